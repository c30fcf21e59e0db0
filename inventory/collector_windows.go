//go:build windows

package inventory

func newPlatformCollector(opts CollectorOptions) Collector {
	return &wmiCollector{timeout: opts.ClassTimeout, query: queryWMI, uninstall: readUninstall}
}
