package probe

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path"
	"sort"
	"strings"
	"time"

	"github.com/snapshot-backup/snapshot-backup/hostctl/config"
	"github.com/snapshot-backup/snapshot-backup/internal/target"
)

// s3Creds reads a profile's access key pair.
func s3Creds(p *config.Profile) (id, secret string, err error) {
	a, err := os.ReadFile(p.S3.AccessKeyFile)
	if err != nil {
		return "", "", err
	}
	s, err := os.ReadFile(p.S3.SecretKeyFile)
	if err != nil {
		return "", "", err
	}
	return strings.TrimSpace(string(a)), strings.TrimSpace(string(s)), nil
}

// signV4 signs req for S3 with AWS Signature Version 4, for an empty
// payload: the host, x-amz-content-sha256, x-amz-date and every header
// already set on req are signed.
func signV4(req *http.Request, id, secret, region string, now time.Time) {
	const empty = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855" // SHA-256 of ""
	amzDate := now.UTC().Format("20060102T150405Z")
	day := amzDate[:8]
	req.Header.Set("x-amz-date", amzDate)
	req.Header.Set("x-amz-content-sha256", empty)
	headers := map[string]string{"host": req.URL.Host}
	for k, v := range req.Header {
		headers[strings.ToLower(k)] = strings.TrimSpace(strings.Join(v, ","))
	}
	names := make([]string, 0, len(headers))
	for k := range headers {
		names = append(names, k)
	}
	sort.Strings(names)
	var canonHeaders strings.Builder
	for _, k := range names {
		canonHeaders.WriteString(k + ":" + headers[k] + "\n")
	}
	signed := strings.Join(names, ";")
	canonical := strings.Join([]string{req.Method, req.URL.EscapedPath(), req.URL.RawQuery, canonHeaders.String(), signed, empty}, "\n")
	scope := day + "/" + region + "/s3/aws4_request"
	sum := sha256.Sum256([]byte(canonical))
	toSign := "AWS4-HMAC-SHA256\n" + amzDate + "\n" + scope + "\n" + hex.EncodeToString(sum[:])
	mac := func(key []byte, s string) []byte {
		h := hmac.New(sha256.New, key)
		h.Write([]byte(s))
		return h.Sum(nil)
	}
	k := mac(mac(mac(mac([]byte("AWS4"+secret), day), region), "s3"), "aws4_request")
	req.Header.Set("Authorization", fmt.Sprintf("AWS4-HMAC-SHA256 Credential=%s/%s, SignedHeaders=%s, Signature=%s",
		id, scope, signed, hex.EncodeToString(mac(k, toSign))))
}

// s3ObjectURL is the URL of key in the target's bucket, dialled on
// 127.0.0.1 for the gateway.
func s3ObjectURL(p *config.Profile, t target.Target, gateway, key string) (*url.URL, error) {
	ep := p.S3.Endpoint
	if ep == "" {
		ep = "https://s3." + s3Region(p) + ".amazonaws.com"
	}
	u, err := url.Parse(ep)
	if err != nil {
		return nil, err
	}
	host := gatewayHost(u.Hostname(), gateway)
	if port := u.Port(); port != "" {
		host += ":" + port
	}
	u.Host = host
	if p.S3.PathStyle {
		u.Path = "/" + t.Host + "/" + key
	} else {
		u.Host, u.Path = t.Host+"."+host, "/"+key
	}
	return u, nil
}

func s3Region(p *config.Profile) string {
	if p.S3.Region != "" {
		return p.S3.Region
	}
	return "us-east-1"
}

// probeS3AppendOnly asks the bucket, with the backup key, to delete two
// objects no repository has (restic names files by the SHA-256 of their
// content): one among the repository's data, which the bucket policy of an
// append-only profile must refuse (HTTP 403), and one among its locks,
// which restic must be able to remove (README: S3 bucket policy).
func probeS3AppendOnly(ctx context.Context, p *config.Profile, t target.Target, gateway string) []Result {
	id, secret, err := s3Creds(p)
	if err != nil {
		return []Result{{Check: "append-only", Item: p.S3.AccessKeyFile, Err: err}}
	}
	prefix := strings.TrimPrefix(t.Path, "/")
	var out []Result
	for _, c := range []struct {
		check, dir string
		mayDelete  bool
	}{{"append-only", "data/00", false}, {"locks", "locks", true}} {
		key := path.Join(prefix, c.dir, noSuchSnapshot)
		r := Result{Check: c.check, Item: "s3://" + t.Host + "/" + key}
		u, err := s3ObjectURL(p, t, gateway, key)
		if err != nil {
			r.Err = err
			out = append(out, r)
			continue
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodDelete, u.String(), nil)
		if err != nil {
			r.Err = err
			out = append(out, r)
			continue
		}
		signV4(req, id, secret, s3Region(p), time.Now())
		resp, err := (&http.Client{Timeout: DialTimeout}).Do(req)
		if err != nil {
			r.Err = err
			out = append(out, r)
			continue
		}
		// A 403 is the policy's only with S3's code AccessDenied: a
		// signature or key the server refuses says nothing about it.
		var body struct {
			Code string `xml:"Code"`
		}
		_ = xml.NewDecoder(io.LimitReader(resp.Body, 64<<10)).Decode(&body)
		resp.Body.Close()
		code := resp.StatusCode
		switch {
		case code == http.StatusForbidden && body.Code != "AccessDenied":
			r.Err = fmt.Errorf("HTTP 403 %s: the bucket refuses the backup key itself (%s, %s)", body.Code, p.S3.AccessKeyFile, p.S3.SecretKeyFile)
		case !c.mayDelete && code == http.StatusForbidden:
			r.Detail = "the bucket refuses the backup key a deletion (HTTP 403 AccessDenied)"
		case !c.mayDelete && code/100 == 2:
			r.Err = fmt.Errorf("the backup key may delete the repository's data (HTTP %d to a DELETE of an object no repository has): give the bucket the policy of README \"S3 bucket policy\"", code)
		case c.mayDelete && code/100 == 2:
			r.Detail = fmt.Sprintf("the backup key may remove restic's locks (HTTP %d)", code)
		case c.mayDelete && code == http.StatusForbidden:
			r.Err = fmt.Errorf("HTTP 403: restic cannot remove its locks: allow s3:DeleteObject on %s/*/locks/* (README \"S3 bucket policy\")", t.Host)
		default:
			r.Err = fmt.Errorf("HTTP %d to a DELETE", code)
		}
		out = append(out, r)
	}
	return out
}
