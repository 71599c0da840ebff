package config_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/snapshot-backup/snapshot-backup/hostctl/config"
)

func TestParseSize(t *testing.T) {
	tests := []struct {
		in   string
		want config.Size
		err  string
	}{
		{"0", 0, ""},
		{"1073741824", 1 << 30, ""},
		{"512M", 512 << 20, ""},
		{"8G", 8 << 30, ""},
		{"8g", 8 << 30, ""},
		{"8GiB", 8 << 30, ""},
		{"1T", 1 << 40, ""},
		{"1.5G", 3 << 29, ""},
		{"0.5K", 512, ""},
		{"1.1K", 1126, ""}, // rounded down to whole bytes
		{"2P", 2 << 50, ""},
		{" 4K ", 4096, ""},
		{"", 0, "no number"},
		{"G", 0, "no number"},
		{"-1G", 0, "negative"},
		{"-5", 0, "negative"},
		{"8 gigs", 0, "not a number"},
		{"8GB", 0, "not a number"}, // ambiguous (decimal?) and not what LVM writes
		{"1e3", 0, "not a number"},
		{"1/2G", 0, "not a number"},
		{"1.2.3M", 0, "not a number"},
		{".", 0, "not a number"},
		{"0x10", 0, "not a number"},
		{"9000P", 0, "too large"},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			got, err := config.ParseSize(tc.in)
			if tc.err != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tc.err)
				assert.Contains(t, err.Error(), `"`+tc.in+`"`, "the message quotes the input")
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
		})
	}
}

func TestSizeString(t *testing.T) {
	for in, want := range map[config.Size]string{
		0: "0", 1: "1", 1024: "1K", 1536 << 20: "1536M", 8 << 30: "8G", 1 << 40: "1T", 1000: "1000",
	} {
		assert.Equal(t, want, in.String())
		back, err := config.ParseSize(want)
		require.NoError(t, err)
		assert.Equal(t, in, back, "String round-trips")
	}
}
