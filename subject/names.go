package subject

// JetStream streams.
const (
	StreamExec      = "EXEC"       // commands.>, 1 msg per subject, 7 days.
	StreamResults   = "RESULTS"    // results.>, 30 days.
	StreamEvents    = "EVENTS"     // events.>, 7 days.
	StreamObs       = "OBS_EVENTS" // obs.>, 90 days.
	StreamInventory = "INVENTORY"  // inventory.>, 90 days.
)

// KV buckets.
const (
	BucketConfig        = "agent_config"         // global, groups.<g>, pcs.<pc_id> → ConfigScope.
	BucketGroups        = "agent_groups"         // <pc_id> → Groups.
	BucketGroupsDerived = "agent_groups_derived" // <pc_id> → Groups, unioned with BucketGroups.
	BucketScriptCurrent = "script_current"       // <command id> → version.
	BucketScriptStatus  = "script_status"        // <command id> → ACTIVE or REVOKED.
	BucketSchedules     = "schedules"            // <schedule id> → Schedule (runs_on: agent ones run locally).
	BucketJobs          = "jobs"                 // <job id> → Job (manifest).
	BucketFleetConfig   = "fleet_config"         // FreezeKey → Freeze.
)

// FreezeKey is the key of the fleet-wide change freeze in BucketFleetConfig.
// Absent means not frozen; a value that does not decode counts as frozen.
const FreezeKey = "freeze"

// Keys of the agent_config bucket.
const (
	ConfigGlobalKey    = "global"  // The fleet-wide scope.
	ConfigGroupsPrefix = "groups." // Prefix of group scopes.
	ConfigPCsPrefix    = "pcs."    // Prefix of pc scopes.
)

// Object stores.
const (
	ObjectCollections  = "collections"    // <pc_id>/<job_id>/[<label>__]<ts>.zip → collect bundle.
	ObjectReleases     = "agent_releases" // <version> → agent binary.
	ObjectResultOutput = "result_output"  // <request_id>/stdout|stderr → output over 256 KiB.
	ObjectScripts      = "scripts"        // <name>/<version> → large script.
)
