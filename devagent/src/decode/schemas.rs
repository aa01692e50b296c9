//! The Consul request structs the dev agent decodes, field by field, with the aliases their `UnmarshalJSON`
//! methods accept: agent/structs/service_definition.go (`ServiceDefinition`), check_type.go (`CheckType`),
//! check_definition.go (`CheckDefinition`), structs.go (`ServiceConnect`, `Weights`, `ServiceAddress`,
//! `Locality`), connect_proxy_config.go (`ConnectProxyConfig`) and intention.go (`Intention`). Consul CE has no
//! `Namespace`/`Partition` fields (its `EnterpriseMeta` is empty), so those are unknown fields here too.

use super::{Field, Kind, Schema};

const fn f(name: &'static str, kind: Kind, go_type: &'static str) -> Field {
    Field { name, aliases: &[], kind, go_type }
}

const fn a(name: &'static str, aliases: &'static [&'static str], kind: Kind, go_type: &'static str) -> Field {
    Field { name, aliases, kind, go_type }
}

/// `structs.Weights`.
pub static WEIGHTS: Schema =
    Schema { go_name: "Weights", fields: &[f("Passing", Kind::Int, "int"), f("Warning", Kind::Int, "int")] };

/// `structs.ServiceAddress`.
pub static SERVICE_ADDRESS: Schema =
    Schema { go_name: "ServiceAddress", fields: &[f("Address", Kind::Str, "string"), f("Port", Kind::Int, "int")] };

/// `structs.Locality`.
pub static LOCALITY: Schema =
    Schema { go_name: "Locality", fields: &[f("Region", Kind::Str, "string"), f("Zone", Kind::Str, "string")] };

/// The check fields `CheckType` and `CheckDefinition` share, with `CheckType.UnmarshalJSON`'s aliases.
macro_rules! check_fields {
    ($($extra:expr),* $(,)?) => {
        &[
            $($extra,)*
            f("Name", Kind::Str, "string"),
            f("Status", Kind::Str, "string"),
            f("Notes", Kind::Str, "string"),
            a("ScriptArgs", &["args", "script_args"], Kind::StrList, "[]string"),
            f("HTTP", Kind::Str, "string"),
            f("H2PING", Kind::Str, "string"),
            a("H2PingUseTLS", &["h2ping_use_tls"], Kind::Bool, "bool"),
            f("Header", Kind::Header, "map[string][]string"),
            f("Method", Kind::Str, "string"),
            f("Body", Kind::Str, "string"),
            f("DisableRedirects", Kind::Bool, "bool"),
            f("TCP", Kind::Str, "string"),
            f("TCPUseTLS", Kind::Bool, "bool"),
            f("UDP", Kind::Str, "string"),
            f("Interval", Kind::Duration, "time.Duration"),
            f("AliasNode", Kind::Str, "string"),
            f("AliasService", Kind::Str, "string"),
            a("DockerContainerID", &["docker_container_id"], Kind::Str, "string"),
            f("Shell", Kind::Str, "string"),
            f("GRPC", Kind::Str, "string"),
            a("GRPCUseTLS", &["grpc_use_tls"], Kind::Bool, "bool"),
            f("OSService", Kind::Str, "string"),
            a("TLSServerName", &["tls_server_name"], Kind::Str, "string"),
            a("TLSSkipVerify", &["tls_skip_verify"], Kind::Bool, "bool"),
            f("Timeout", Kind::Duration, "time.Duration"),
            f("TTL", Kind::Duration, "time.Duration"),
            f("SuccessBeforePassing", Kind::Int, "int"),
            f("FailuresBeforeWarning", Kind::Int, "int"),
            f("FailuresBeforeCritical", Kind::Int, "int"),
            f("ProxyHTTP", Kind::Str, "string"),
            f("ProxyGRPC", Kind::Str, "string"),
            a("DeregisterCriticalServiceAfter", &["deregister_critical_service_after"], Kind::Duration, "time.Duration"),
            f("OutputMaxSize", Kind::Int, "int"),
        ]
    };
}

/// `structs.CheckType` (a check inside a service definition). Its `ServiceID`/`service_id` are accepted and
/// ignored, as Consul does.
pub static CHECK_TYPE: Schema = Schema {
    go_name: "",
    fields: check_fields![
        f("CheckID", Kind::Str, "types.CheckID"),
        a("ServiceID", &["service_id"], Kind::Str, "string"),
    ],
};

/// `structs.CheckDefinition` (`PUT /v1/agent/check/register`).
pub static CHECK_DEFINITION: Schema = Schema {
    go_name: "",
    fields: check_fields![
        f("ID", Kind::Str, "types.CheckID"),
        a("ServiceID", &["service_id"], Kind::Str, "string"),
        f("Token", Kind::Str, "string"),
    ],
};

/// `structs.ConnectProxyConfig` with its snake_case aliases; the nested configuration blocks are kept as JSON.
pub static CONNECT_PROXY_CONFIG: Schema = Schema {
    go_name: "",
    fields: &[
        a("DestinationServiceName", &["destination_service_name"], Kind::Str, "string"),
        a("DestinationServiceID", &["destination_service_id"], Kind::Str, "string"),
        a("LocalServiceAddress", &["local_service_address"], Kind::Str, "string"),
        a("LocalServicePort", &["local_service_port"], Kind::Int, "int"),
        a("LocalServiceSocketPath", &["local_service_socket_path"], Kind::Str, "string"),
        f("Mode", Kind::Str, "structs.ProxyMode"),
        f("Config", Kind::Any, "map[string]interface {}"),
        f("Upstreams", Kind::Any, "structs.Upstreams"),
        a("MeshGateway", &["mesh_gateway"], Kind::Any, "structs.MeshGatewayConfig"),
        f("Expose", Kind::Any, "structs.ExposeConfig"),
        a("TransparentProxy", &["transparent_proxy"], Kind::Any, "structs.TransparentProxyConfig"),
        a("AccessLogs", &["access_logs"], Kind::Any, "structs.AccessLogsConfig"),
        f("EnvoyExtensions", Kind::Any, "[]structs.EnvoyExtension"),
    ],
};

/// `structs.ServiceConnect`.
pub static SERVICE_CONNECT: Schema = Schema {
    go_name: "",
    fields: &[
        f("Native", Kind::Bool, "bool"),
        a("SidecarService", &["sidecar_service"], Kind::Obj(&SERVICE_DEFINITION), "structs.ServiceDefinition"),
    ],
};

/// `structs.ServiceDefinition` (`PUT /v1/agent/service/register`).
pub static SERVICE_DEFINITION: Schema = Schema {
    go_name: "",
    fields: &[
        f("Kind", Kind::Str, "structs.ServiceKind"),
        f("ID", Kind::Str, "string"),
        f("Name", Kind::Str, "string"),
        f("Tags", Kind::StrList, "[]string"),
        f("Address", Kind::Str, "string"),
        a("TaggedAddresses", &["tagged_addresses"], Kind::ObjMap(&SERVICE_ADDRESS), "structs.ServiceAddress"),
        f("Meta", Kind::StrMap, "map[string]string"),
        f("Port", Kind::Int, "int"),
        f("Ports", Kind::Any, "structs.ServicePorts"),
        f("SocketPath", Kind::Str, "string"),
        f("Check", Kind::Obj(&CHECK_TYPE), "structs.CheckType"),
        f("Checks", Kind::ObjList(&CHECK_TYPE), "structs.CheckTypes"),
        f("Weights", Kind::Obj(&WEIGHTS), "structs.Weights"),
        f("Token", Kind::Str, "string"),
        a("EnableTagOverride", &["enable_tag_override"], Kind::Bool, "bool"),
        f("Locality", Kind::Obj(&LOCALITY), "structs.Locality"),
        f("Proxy", Kind::Obj(&CONNECT_PROXY_CONFIG), "structs.ConnectProxyConfig"),
        f("Connect", Kind::Obj(&SERVICE_CONNECT), "structs.ServiceConnect"),
    ],
};

/// `structs.Intention` (bodies of the intention write endpoints). Timestamps, hashes and indexes are accepted
/// and ignored (the agent sets them), as Consul does.
pub static INTENTION: Schema = Schema {
    go_name: "Intention",
    fields: &[
        f("ID", Kind::Str, "string"),
        f("Description", Kind::Str, "string"),
        f("SourceNS", Kind::Str, "string"),
        f("SourceName", Kind::Str, "string"),
        f("DestinationNS", Kind::Str, "string"),
        f("DestinationName", Kind::Str, "string"),
        f("SourcePartition", Kind::Str, "string"),
        f("DestinationPartition", Kind::Str, "string"),
        f("SourcePeer", Kind::Str, "string"),
        f("SourceSamenessGroup", Kind::Str, "string"),
        f("SourceType", Kind::Str, "structs.IntentionSourceType"),
        f("Action", Kind::Str, "structs.IntentionAction"),
        f("Permissions", Kind::Any, "[]*structs.IntentionPermission"),
        f("LegacyMeta", Kind::StrMap, "map[string]string"),
        f("Meta", Kind::StrMap, "map[string]string"),
        f("Precedence", Kind::Int, "int"),
        f("CreatedAt", Kind::Any, "time.Time"),
        f("UpdatedAt", Kind::Any, "time.Time"),
        f("Hash", Kind::Any, "[]uint8"),
        f("CreateIndex", Kind::Int, "uint64"),
        f("ModifyIndex", Kind::Int, "uint64"),
    ],
};

/// `checkUpdate` (`PUT /v1/agent/check/update/<id>`) [agent/agent_endpoint.go].
pub static CHECK_UPDATE: Schema =
    Schema { go_name: "checkUpdate", fields: &[f("Status", Kind::Str, "string"), f("Output", Kind::Str, "string")] };
