package auth

import (
	"maps"
	"strings"
	"testing"
)

func TestParseKeys(t *testing.T) {
	tests := []struct {
		in   string
		want KeySet
	}{
		{"devkey: secret", KeySet{"devkey": "secret"}},
		{"k1: s1, k2: s2", KeySet{"k1": "s1", "k2": "s2"}},
		{"  k1:s1 ,\n k2 :  s2 ,", KeySet{"k1": "s1", "k2": "s2"}},
		{"k1: s1\nk2: s2\n", KeySet{"k1": "s1", "k2": "s2"}},
		{"k1: a:b:c", KeySet{"k1": "a:b:c"}},
	}
	for _, tc := range tests {
		got, err := ParseKeys(tc.in)
		if err != nil || !maps.Equal(got, tc.want) {
			t.Errorf("ParseKeys(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
		}
	}
}

func TestParseKeysErrors(t *testing.T) {
	tests := []struct {
		in      string
		mention string // what the message must say to point at the mistake
	}{
		{"", "no key"},
		{" , \n", "no key"},
		{"k1 s3cr3t", "pair 1 has no ':'"},
		{"k1: s1, k2 s3cr3t", "pair 2 has no ':'"},
		{": s3cr3t", "pair 1 has an empty key"},
		{"k1: s1, k2:", `pair 2 (key "k2") has an empty secret`},
		{"my key: s3cr3t", `key "my key" contains a space`},
		{"k1: s3cr3t with space", `pair 1 (key "k1"): secret contains a space`},
		{"k1: s1, k1: s3cr3t", `pair 2 repeats key "k1"`},
	}
	for _, tc := range tests {
		got, err := ParseKeys(tc.in)
		if err == nil {
			t.Errorf("ParseKeys(%q) = %v, want an error", tc.in, got)
			continue
		}
		if !strings.Contains(err.Error(), tc.mention) {
			t.Errorf("ParseKeys(%q) error %q should say %q", tc.in, err, tc.mention)
		}
		if strings.Contains(err.Error(), "s3cr3t") {
			t.Errorf("ParseKeys(%q) error %q reveals a secret", tc.in, err)
		}
	}
}

func TestKeySetValidate(t *testing.T) {
	strong := strings.Repeat("x", MinSecretBytes)
	weak := "short-s3cr3t"
	tests := []struct {
		name      string
		keys      KeySet
		allowWeak bool
		mention   string // "" means valid
	}{
		{"strong", KeySet{"k": strong}, false, ""},
		{"dev pair with the dev flag", KeySet{"devkey": "secret"}, true, ""},
		{"weak without the dev flag", KeySet{"k": strong, "old": weak}, false, `key "old" has a 12-byte secret, want at least 32`},
		{"secret one byte short", KeySet{"k": strong[1:]}, false, "31-byte"},
		{"empty set", KeySet{}, true, "none configured"},
		{"nil set", nil, true, "none configured"},
		{"empty secret even in dev", KeySet{"k": ""}, true, `key "k" has an empty secret`},
		{"empty key", KeySet{"": strong}, false, "an API key is empty"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.keys.Validate(tc.allowWeak)
			if tc.mention == "" {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.mention) {
				t.Fatalf("Validate error %v, want one saying %q", err, tc.mention)
			}
			if strings.Contains(err.Error(), weak) {
				t.Errorf("error %q reveals a secret", err)
			}
		})
	}
}
