package awskmstest

import (
	"bytes"
	"context"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The emulator's log lines carry no ANSI colour codes when the log is not
// a terminal, and requests still reach local-kms's handlers.
func TestLogWithoutColourOffTerminal(t *testing.T) {
	s := New(t)
	var buf bytes.Buffer
	s.log.SetOutput(&buf)
	arn := s.CreateKey(t)
	client := s.Client()
	enc, err := client.Encrypt(context.Background(), &kms.EncryptInput{KeyId: aws.String(arn), Plaintext: []byte("x")})
	require.NoError(t, err)
	dec, err := client.Decrypt(context.Background(), &kms.DecryptInput{KeyId: aws.String(arn), CiphertextBlob: enc.CiphertextBlob})
	require.NoError(t, err)
	assert.Equal(t, []byte("x"), dec.Plaintext)

	_, err = client.ListKeys(context.Background(), &kms.ListKeysInput{})
	require.NoError(t, err)

	log := buf.String()
	assert.Contains(t, log, "key created: "+arn)
	assert.NotContains(t, log, "\x1b[", "ANSI escape in %q", log)
}
