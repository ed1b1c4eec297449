package main

import "testing"

func TestURLHasPassword(t *testing.T) {
	for dsn, want := range map[string]bool{
		"postgres://wgnet@db/wgnet?sslmode=verify-full":                               false,
		"postgres://wgnet:secret@db/wgnet":                                            true,
		"postgresql://wgnet@db/wgnet?sslmode=require&password=x":                      true,
		"postgres://wgnet@pg1:5432,pg2:5432/wgnet?target_session_attrs=read-write":    false,
		"postgres://wgnet:pw@pg1:5432,pg2:5432/wgnet":                                 true,
		"postgres:///wgnet?host=%2Ftmp%2Fsock&user=wgnet":                             false,
		"postgres://db:5432/wgnet?options=-c%20statement_timeout%3D5s&sslmode=prefer": false,
	} {
		if got := urlHasPassword(dsn); got != want {
			t.Errorf("urlHasPassword(%q) = %v, want %v", dsn, got, want)
		}
	}
}
