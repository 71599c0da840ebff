package config

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestTargetFor(t *testing.T) {
	tests := []struct {
		target, client, want, err string
	}{
		{"file:///srv/backup/{client}", "web", "file:///srv/backup/web", ""},
		{"file:///srv/{client}/borg", "db-1.example", "file:///srv/db-1.example/borg", ""},
		{"file://localhost/srv/{client}", "web", "file:///srv/web", ""},
		{"file:///srv/shared", "web", "file:///srv/shared", ""},
		{"file:///srv/{client}", "../etc", "", "client name"},
		{"file:///srv/{client}", "", "", "client name"},
		{"file:///srv/{name}", "web", "", "unknown placeholder {name}"},
		{"sftp://backup@nas:2222/srv/{client}", "web", "sftp://backup@nas:2222/srv/web", ""},
		{"sftp://backup:pw@nas/srv/{client}", "web", "", "no password in the URL"},
		{"s3://bucket", "web", "", "want s3://bucket/prefix"},
		{"b2://bucket/{client}", "web", "", "not supported yet"},
		{"file:///srv/../etc/{client}", "web", "", `".."`},
		{"file:///srv/{client}?x=1", "web", "", "no query or fragment"},
		{"srv/{client}", "web", "", "no scheme"},
	}
	for _, tc := range tests {
		t.Run(tc.target+" "+tc.client, func(t *testing.T) {
			u, err := (&Profile{Target: tc.target}).targetFor(tc.client)
			if tc.err != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tc.err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, u.String())
			assert.Equal(t, tc.want[:strings.Index(tc.want, ":")], string(u.Scheme))
		})
	}
}
