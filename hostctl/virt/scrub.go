package virt

import (
	"fmt"
	"regexp"
)

// secretAttr matches the attributes in which a domain's XML can carry a
// password: graphics passwd= (VNC, SPICE), and password= where a driver
// takes one inline.
var secretAttr = regexp.MustCompile(`\s(passwd|password)\s*=\s*("[^"]*"|'[^']*')`)

// ScrubDomainXML is a domain's XML as the VM record stores it: without
// password attributes (libvirt leaves them out of a dump without the
// secure flag; this holds for XML from any source). References to libvirt
// secrets (<secret uuid=…/>) stay: they name a secret, not its value.
func ScrubDomainXML(xml string, max int) (string, error) {
	if len(xml) > max {
		return "", fmt.Errorf("domain XML: %d bytes, more than %d", len(xml), max)
	}
	return secretAttr.ReplaceAllString(xml, ""), nil
}
