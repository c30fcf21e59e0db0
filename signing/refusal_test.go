package signing

import (
	"crypto/sha1"
	"fmt"
	"testing"
)

// uuid5 computes a UUIDv5 by hand, per RFC 9562 (formerly RFC 4122) 5.5.
func uuid5(namespace [16]byte, name string) string {
	h := sha1.New()
	h.Write(namespace[:])
	h.Write([]byte(name))
	var u [16]byte
	copy(u[:], h.Sum(nil))
	u[6] = u[6]&0x0f | 0x50 // version 5
	u[8] = u[8]&0x3f | 0x80 // RFC variant
	return fmt.Sprintf("%x-%x-%x-%x-%x", u[0:4], u[4:6], u[6:8], u[8:10], u[10:16])
}

// nsOID is NAMESPACE_OID, 6ba7b812-9dad-11d1-80b4-00c04fd430c8.
var nsOID = [16]byte{0x6b, 0xa7, 0xb8, 0x12, 0x9d, 0xad, 0x11, 0xd1, 0x80, 0xb4, 0x00, 0xc0, 0x4f, 0xd4, 0x30, 0xc8}

func TestRefusalResultID(t *testing.T) {
	cases := []struct{ request, pc, want string }{
		// Values from Python: uuid.uuid5(uuid.NAMESPACE_OID, "<request_id>|<pc_id>|signature-refused").
		{"0190b3c4-7e1f-7a2b-9c3d-4e5f60718293", "PC-0042", "46e78b64-25fe-517c-b813-a45e77629efe"},
		{"", "", "d4d3d9ec-68f4-51ba-8745-7fca1afd5896"},
	}
	for _, c := range cases {
		got := RefusalResultID(c.request, c.pc)
		if got != c.want {
			t.Errorf("RefusalResultID(%q, %q) = %s, want %s", c.request, c.pc, got, c.want)
		}
		if hand := uuid5(nsOID, c.request+"|"+c.pc+"|signature-refused"); got != hand {
			t.Errorf("RefusalResultID(%q, %q) = %s, by hand %s", c.request, c.pc, got, hand)
		}
		if got[14] != '5' {
			t.Errorf("%s is not version 5", got)
		}
		if again := RefusalResultID(c.request, c.pc); again != got {
			t.Errorf("not deterministic: %s then %s", got, again)
		}
	}
	if RefusalResultID("r1", "pc1") == RefusalResultID("r1", "pc2") || RefusalResultID("r1", "pc1") == RefusalResultID("r2", "pc1") {
		t.Error("different commands or agents share a result id")
	}
}
