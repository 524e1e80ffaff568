package main

import (
	"context"
	"errors"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestCompleteAWSConfig(t *testing.T) {
	static := credentials.NewStaticCredentialsProvider("AKIDEXAMPLE", "secret", "")
	failing := aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
		return aws.Credentials{}, errors.New("no EC2 IMDS role found")
	})
	const arn = "arn:aws:kms:eu-west-1:111122223333:key/1bf9bf63-8bfc-422d-9190-f69f7eec33a7"
	for _, tc := range []struct {
		name       string
		cfg        aws.Config
		key        string
		wantRegion string
		wantErr    error
	}{
		{"region from the configuration", aws.Config{Region: "us-east-1", Credentials: static}, arn, "us-east-1", nil},
		{"region from the ARN", aws.Config{Credentials: static}, arn, "eu-west-1", nil},
		{"alias without region", aws.Config{Credentials: static}, "alias/app", "", errRegion},
		{"no credentials", aws.Config{Region: "us-east-1"}, "alias/app", "us-east-1", errCredentials},
		{"credentials fail", aws.Config{Region: "us-east-1", Credentials: failing}, "alias/app", "us-east-1", errCredentials},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := tc.cfg
			err := completeAWSConfig(context.Background(), &cfg, tc.key)
			if tc.wantErr == nil {
				require.NoError(t, err)
			} else {
				require.ErrorIs(t, err, tc.wantErr)
			}
			assert.Equal(t, tc.wantRegion, cfg.Region)
		})
	}
	cfg := aws.Config{Region: "us-east-1", Credentials: failing}
	assert.ErrorContains(t, completeAWSConfig(context.Background(), &cfg, "alias/app"), "no EC2 IMDS role found", "the SDK's reason is kept")
}
