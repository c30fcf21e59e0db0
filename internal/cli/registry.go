package cli

// registryTokenPath is the Windows registry value holding the NATS token
// that upstream kanade's agent, backend and CLI share.
const registryTokenPath = `HKLM\SOFTWARE\kanade\agent\NatsToken`

// readRegistryToken reads registryTokenPath ("" when missing); nil off
// Windows.
var readRegistryToken func() (string, error)
