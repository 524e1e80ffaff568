// Package awsconf completes and checks the AWS SDK configuration that the
// keyward command and the awskms example load, so that a missing region or
// missing credentials is reported as the configuration problem it is,
// before any KMS call, instead of as an unavailable key source.
package awsconf
