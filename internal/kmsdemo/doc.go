// Package kmsdemo is the part examples/awskms and examples/gcpkms share: a
// keyring over a cloud key source, a few values encrypted and read back,
// and a thousand more, with the KMS calls they cost.
package kmsdemo
