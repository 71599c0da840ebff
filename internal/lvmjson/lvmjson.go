// Package lvmjson parses LVM's machine-readable reports (`lvs`, `vgs`,
// `pvs` with --reportformat json --units b), the only LVM output either
// side reads: the host's LVM snapshot code and the appliance's guest LVM
// activation — and maps LV names to device-mapper names and back.
package lvmjson

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
)

// Rows returns the rows of the report's section ("lv", "vg", "pv", "seg")
// as field → value maps. LVM prints several reports when given several
// objects; their rows are concatenated.
func Rows(out []byte, section string) ([]map[string]string, error) {
	var doc struct {
		Report []map[string][]map[string]string `json:"report"`
	}
	if err := json.Unmarshal(out, &doc); err != nil {
		return nil, fmt.Errorf("parse LVM JSON report: %w", err)
	}
	var rows []map[string]string
	for _, r := range doc.Report {
		rows = append(rows, r[section]...)
	}
	return rows, nil
}

// Bytes parses a size printed with --units b ("4194304B"; with
// --nosuffix "4194304"). An empty field is 0.
func Bytes(s string) (int64, error) {
	s = strings.TrimSuffix(strings.TrimSpace(s), "B")
	if s == "" {
		return 0, nil
	}
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("LVM size %q: %w", s, err)
	}
	return v, nil
}

// Percent parses a percentage field such as data_percent ("12.50"); an
// empty field (not applicable) is 0.
func Percent(s string) (float64, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, nil
	}
	v, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return 0, fmt.Errorf("LVM percentage %q: %w", s, err)
	}
	return v, nil
}

// SplitDMName splits a device-mapper name of an LV ("vg-lv", with "-" in
// either name doubled: "my--vg-root") into VG and LV.
func SplitDMName(name string) (vg, lv string, ok bool) {
	for i := 0; i < len(name); i++ {
		if name[i] != '-' {
			continue
		}
		if i+1 < len(name) && name[i+1] == '-' {
			i++
			continue
		}
		vg = strings.ReplaceAll(name[:i], "--", "-")
		lv = strings.ReplaceAll(name[i+1:], "--", "-")
		return vg, lv, vg != "" && lv != ""
	}
	return "", "", false
}

// DMName is the device-mapper name of VG/LV (the inverse of SplitDMName).
func DMName(vg, lv string) string {
	return strings.ReplaceAll(vg, "-", "--") + "-" + strings.ReplaceAll(lv, "-", "--")
}
