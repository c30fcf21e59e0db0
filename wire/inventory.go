package wire

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"time"
)

// Inventory categories of an InventoryReport.
const (
	CategoryHW  = "hw"  // Hardware.
	CategoryOS  = "os"  // Operating system and updates.
	CategorySW  = "sw"  // Installed software.
	CategoryNet = "net" // Network configuration.
)

// Categories lists every inventory category in a stable order.
var Categories = []string{CategoryHW, CategoryOS, CategorySW, CategoryNet}

// InventoryReport describes one category of the machine, published on
// inventory.<pc_id>.<category> (ours).
type InventoryReport struct {
	// PcID is the agent's pc id.
	PcID string `json:"pc_id"`
	// At is when the data was collected.
	At time.Time `json:"at"`
	// Category is hw, os, sw or net.
	Category string `json:"category"`
	// Collector names what produced Data: wmi, linux, ...
	Collector string `json:"collector"`
	// Hash is the lower-case hex SHA-256 of the canonical JSON of Data.
	Hash string `json:"hash"`
	// Data maps a class (WMI class name on Windows) to a list of objects.
	Data map[string]any `json:"data"`
}

// MarshalJSON encodes r with its timestamp written as upstream's chrono
// writes one (see Marshal).
func (r InventoryReport) MarshalJSON() ([]byte, error) {
	return marshal(struct {
		PcID      string         `json:"pc_id"`
		At        chronoTime     `json:"at"`
		Category  string         `json:"category"`
		Collector string         `json:"collector"`
		Hash      string         `json:"hash"`
		Data      map[string]any `json:"data"`
	}{r.PcID, chronoTime(r.At), r.Category, r.Collector, r.Hash, r.Data})
}

// HashData returns the hex SHA-256 of the canonical JSON encoding of data:
// object keys sorted (encoding/json sorts map keys, so equal data gives an
// equal hash whatever the order it was built in), no insignificant
// whitespace, and '<', '>' and '&' written as themselves, as RFC 8785 (JSON
// canonicalization) writes strings, not as encoding/json's default \u003c
// escapes, so a backend can re-hash with a canonical encoder of its own.
// (U+2028 and U+2029 are still written escaped; inventory data does not
// hold them in practice.)
func HashData(data map[string]any) (string, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(data); err != nil {
		return "", fmt.Errorf("wire: hash inventory data: %w", err)
	}
	sum := sha256.Sum256(bytes.TrimSuffix(buf.Bytes(), []byte("\n")))
	return hex.EncodeToString(sum[:]), nil
}

// DecodeInventoryReport decodes an InventoryReport.
func DecodeInventoryReport(b []byte) (*InventoryReport, error) {
	var r InventoryReport
	if err := decode(b, &r, "inventory report"); err != nil {
		return nil, err
	}
	return &r, nil
}
