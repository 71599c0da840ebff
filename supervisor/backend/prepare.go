package backend

import (
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/snapshot-backup/snapshot-backup/internal/target"
)

// prepareTarget writes the per-boot files a network target needs into the
// work dir: the ssh configuration, S3 credentials, a REST server's URL
// with its password. They live on the /run
// tmpfs and name the secret files on the job disk, or (S3, whose tools read
// keys only from their environment or a credentials file) hold them.
func prepareTarget(req Request) error {
	d := req.Dirs
	if err := os.MkdirAll(filepath.Join(req.Root, d.Home()), 0o700); err != nil {
		return fmt.Errorf("work dir: %w", err)
	}
	r := req.Job.Repo
	switch {
	case r.Target.Scheme.OverSSH():
		return writeSSHConfig(req.Root, req)
	case r.Target.Scheme == target.S3:
		var keys []string
		for _, s := range []target.Secret{target.S3AccessKey, target.S3SecretKey} {
			b, err := os.ReadFile(filepath.Join(req.Root, req.secret(r.Secrets[s])))
			if err != nil {
				return fmt.Errorf("s3 credentials: %w", err)
			}
			keys = append(keys, strings.TrimSpace(string(b)))
		}
		creds := fmt.Sprintf("[default]\naws_access_key_id = %s\naws_secret_access_key = %s\n", keys[0], keys[1])
		return os.WriteFile(filepath.Join(req.Root, path.Join(d.Work, "aws-credentials")), []byte(creds), 0o600)
	case r.Target.Scheme == target.REST:
		b, err := os.ReadFile(filepath.Join(req.Root, req.secret(r.Secrets[target.RESTPassword])))
		if err != nil {
			return fmt.Errorf("rest password: %w", err)
		}
		repo := ResticRESTURL(r.Target, strings.TrimRight(string(b), "\r\n"))
		return os.WriteFile(filepath.Join(req.Root, d.ResticRepositoryFile()), []byte(repo+"\n"), 0o600)
	}
	return nil
}
