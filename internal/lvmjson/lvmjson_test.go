package lvmjson

import "testing"

func TestRows(t *testing.T) {
	out := []byte(`  {
      "report": [
          {
              "lv": [
                  {"lv_name":"root", "vg_name":"vg0", "lv_size":"4194304B", "data_percent":""},
                  {"lv_name":"snap", "vg_name":"vg0", "lv_size":"1048576B", "data_percent":"12.50"}
              ]
          }
      ]
  }`)
	rows, err := Rows(out, "lv")
	if err != nil || len(rows) != 2 || rows[1]["lv_name"] != "snap" {
		t.Fatalf("Rows = %v, %v", rows, err)
	}
	if n, err := Bytes(rows[0]["lv_size"]); err != nil || n != 4194304 {
		t.Errorf("Bytes = %d, %v", n, err)
	}
	if p, err := Percent(rows[1]["data_percent"]); err != nil || p != 12.5 {
		t.Errorf("Percent = %v, %v", p, err)
	}
	if p, err := Percent(rows[0]["data_percent"]); err != nil || p != 0 {
		t.Errorf("empty Percent = %v, %v", p, err)
	}
	if _, err := Bytes("12x"); err == nil {
		t.Error("Bytes(12x) accepted")
	}
	if _, err := Rows([]byte("no json"), "lv"); err == nil {
		t.Error("garbage accepted")
	}
}
