package subject

// ProcessPerfAll matches every agent's ProcessPerf (process_perf.<pc_id>).
const ProcessPerfAll = "process_perf.*"

// ProcessPerf returns process_perf.<pcID>, on which an agent publishes its
// top processes by CPU while process_perf_enabled is on and not expired.
func ProcessPerf(pcID string) (string, error) {
	return join("process_perf.", []string{"pc_id"}, []string{pcID})
}

// JobTail returns job.tail.<pcID>, the request/reply subject that returns
// the live output of one of the agent's runs (wire.JobTailRequest).
func JobTail(pcID string) (string, error) {
	return join("job.tail.", []string{"pc_id"}, []string{pcID})
}
