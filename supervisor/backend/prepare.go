package backend

import (
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strings"
)

// prepareTarget writes the per-boot files a network target needs into the
// work dir: the ssh configuration, S3 credentials. They live on the /run
// tmpfs and name the secret files on the job disk, or (S3, whose tools read
// keys only from their environment or a credentials file) hold them.
func prepareTarget(req Request) error {
	d := req.D()
	if err := os.MkdirAll(filepath.Join(req.Root, d.Home()), 0o700); err != nil {
		return fmt.Errorf("work dir: %w", err)
	}
	t, err := ParseTarget(req.Job.Repo.URL)
	if err != nil {
		return err
	}
	switch t.Scheme {
	case "sftp", "ssh":
		return writeSSHConfig(req.Root, req)
	case "s3":
		s3 := req.Job.Repo.S3
		var keys []string
		for _, f := range []string{s3.AccessKeyFile, s3.SecretKeyFile} {
			b, err := os.ReadFile(filepath.Join(req.Root, req.secret(f)))
			if err != nil {
				return fmt.Errorf("s3 credentials: %w", err)
			}
			keys = append(keys, strings.TrimSpace(string(b)))
		}
		creds := fmt.Sprintf("[default]\naws_access_key_id = %s\naws_secret_access_key = %s\n", keys[0], keys[1])
		return os.WriteFile(filepath.Join(req.Root, path.Join(d.Work, "aws-credentials")), []byte(creds), 0o600)
	}
	return nil
}
