//! One example of every message, used by the round-trip tests and to generate the examples
//! in `docs/PROTOCOL.md` (a test fails when the document is stale; run
//! `FORESIGHT_BLESS=1 cargo test -p foresight-shared` to regenerate it).

use serde_json::json;

use super::broker::{
    ClientMessage, DenyReason, Lease, LeaseEndReason, ServerMessage, WorkerExitReason,
};
use super::demand::{
    ComponentDemand, ComponentKind, CurveBucket, DemandCurve, GraphSummary, PageDemand, PathDemand,
    PathKind,
};
use super::executor::{ConsoleLevel, ExecutorLimits, FromExecutor, ToExecutor};
use super::host::{HostReply, HostRequest};
use super::plan::{
    BrokerTerms, ContentionSnapshot, ContentionSource, Placement, Plan, PlanSource, Policy,
    RemoteRequest, ResourceAmounts, Target,
};
use super::{ErrorCode, PROTOCOL_VERSION, Quantiles};

pub fn demand() -> PageDemand {
    PageDemand {
        url: "http://127.0.0.1:8080/index.html".into(),
        paths: vec![
            PathDemand {
                name: "load".into(),
                kind: PathKind::Load,
                probability: 1.0,
                cpu_ms: Quantiles {
                    p10: 4.0,
                    p50: 9.0,
                    p90: 21.0,
                },
                memory_bytes: Quantiles {
                    p10: 1.0e6,
                    p50: 2.0e6,
                    p90: 4.0e6,
                },
                network_bytes: Quantiles::exact(48_000.0),
                event: None,
                target: None,
                curve: DemandCurve {
                    bucket_ms: 10.0,
                    buckets: vec![
                        CurveBucket {
                            cpu_ms: Quantiles {
                                p10: 4.0,
                                p50: 9.0,
                                p90: 10.0,
                            },
                            memory_bytes: Quantiles {
                                p10: 1.0e6,
                                p50: 2.0e6,
                                p90: 4.0e6,
                            },
                            network_bytes: Quantiles::exact(48_000.0),
                        },
                        CurveBucket {
                            cpu_ms: Quantiles {
                                p10: 0.0,
                                p50: 0.0,
                                p90: 10.0,
                            },
                            memory_bytes: Quantiles {
                                p10: 1.0e6,
                                p50: 2.0e6,
                                p90: 4.0e6,
                            },
                            network_bytes: Quantiles::exact(0.0),
                        },
                        CurveBucket {
                            cpu_ms: Quantiles {
                                p10: 0.0,
                                p50: 0.0,
                                p90: 1.0,
                            },
                            memory_bytes: Quantiles {
                                p10: 1.0e6,
                                p50: 2.0e6,
                                p90: 4.0e6,
                            },
                            network_bytes: Quantiles::exact(0.0),
                        },
                    ],
                },
            },
            PathDemand {
                name: "click #sort".into(),
                kind: PathKind::Interaction,
                probability: 0.5,
                cpu_ms: Quantiles {
                    p10: 0.5,
                    p50: 1.5,
                    p90: 6.0,
                },
                memory_bytes: Quantiles {
                    p10: 1.0e4,
                    p50: 5.0e4,
                    p90: 2.0e5,
                },
                network_bytes: Quantiles::exact(0.0),
                event: Some("click".into()),
                target: Some("#sort".into()),
                curve: DemandCurve {
                    bucket_ms: 1.0,
                    buckets: vec![
                        CurveBucket {
                            cpu_ms: Quantiles {
                                p10: 0.5,
                                p50: 1.0,
                                p90: 1.0,
                            },
                            memory_bytes: Quantiles {
                                p10: 1.0e4,
                                p50: 5.0e4,
                                p90: 2.0e5,
                            },
                            network_bytes: Quantiles::exact(0.0),
                        },
                        CurveBucket {
                            cpu_ms: Quantiles {
                                p10: 0.0,
                                p50: 0.5,
                                p90: 1.0,
                            },
                            memory_bytes: Quantiles {
                                p10: 1.0e4,
                                p50: 5.0e4,
                                p90: 2.0e5,
                            },
                            network_bytes: Quantiles::exact(0.0),
                        },
                    ],
                },
            },
        ],
        components: vec![ComponentDemand {
            id: "worker-0".into(),
            kind: ComponentKind::Worker,
            url: Some("http://127.0.0.1:8080/worker.js".into()),
            source_known: true,
            cpu_ms: Quantiles {
                p10: 900.0,
                p50: 1800.0,
                p90: 3600.0,
            },
            memory_bytes: Quantiles::exact(8.0e6),
            offloadable: true,
        }],
        graph: GraphSummary {
            nodes: 12,
            edges: 14,
            scripts: 2,
            functions: 5,
            unresolved_calls: 1,
            parse_errors: 0,
        },
        warnings: vec![],
        truncated: false,
    }
}

pub fn contention() -> ContentionSnapshot {
    ContentionSnapshot {
        source: ContentionSource::NativeHost,
        taken_at_ms: 1_796_000_000_000,
        logical_cpus: 2,
        cpu_usage: 0.25,
        available_cpu_millicores: 1500,
        total_memory_bytes: 25_769_803_776,
        available_memory_bytes: 23_000_000_000,
        load_average_1m: Some(0.4),
    }
}

pub fn resources() -> ResourceAmounts {
    ResourceAmounts {
        cpu_millicores: 1000,
        memory_bytes: 41_943_040,
        bandwidth_bytes_per_s: 0,
    }
}

pub fn plan() -> Plan {
    Plan {
        url: "http://127.0.0.1:8080/index.html".into(),
        source: PlanSource::NativeHost,
        local: ResourceAmounts {
            cpu_millicores: 21,
            memory_bytes: 4_000_000,
            bandwidth_bytes_per_s: 48_000,
        },
        remote: Some(RemoteRequest {
            resources: resources(),
            ttl_ms: 144_000,
            priority: 5,
        }),
        placements: vec![Placement {
            component_id: "worker-0".into(),
            url: Some("http://127.0.0.1:8080/worker.js".into()),
            target: Target::Remote,
            reason: "predicted 3600 ms CPU, at least the 100 ms offload threshold".into(),
        }],
        reasons: vec!["lease 1000 millicores and 40 MiB for 144 s".into()],
    }
}

pub fn host_requests() -> Vec<HostRequest> {
    vec![
        HostRequest::Hello {
            protocol_version: PROTOCOL_VERSION,
            client: "foresight-extension/0.1.0 chrome".into(),
        },
        HostRequest::Plan {
            request_id: 7,
            demand: demand(),
            policy: Policy::default(),
            broker: Some(BrokerTerms {
                available: true,
                rtt_ms: 0.8,
                capacity: resources(),
            }),
        },
        HostRequest::Contention { request_id: 8 },
        HostRequest::Unknown,
    ]
}

pub fn host_replies() -> Vec<HostReply> {
    vec![
        HostReply::Hello {
            protocol_version: PROTOCOL_VERSION,
            host: "foresight-host/0.1.0".into(),
            broker_url: Some("ws://127.0.0.1:47800".into()),
        },
        HostReply::Plan {
            request_id: 7,
            plan: plan(),
            contention: contention(),
        },
        HostReply::Contention {
            request_id: 8,
            contention: contention(),
        },
        HostReply::Error {
            request_id: None,
            code: ErrorCode::InvalidJson,
            message: "frame is not valid JSON: expected value at line 1 column 1".into(),
        },
        HostReply::Unknown,
    ]
}

pub fn client_messages() -> Vec<ClientMessage> {
    vec![
        ClientMessage::Hello {
            protocol_version: PROTOCOL_VERSION,
            client: "foresight-extension/0.1.0 firefox".into(),
            token: None,
        },
        ClientMessage::LeaseRequest {
            request_id: 1,
            resources: resources(),
            ttl_ms: 144_000,
            priority: 5,
            purpose: "http://127.0.0.1:8080/index.html".into(),
        },
        ClientMessage::LeaseRenew {
            lease_id: 3,
            ttl_ms: 60_000,
        },
        ClientMessage::LeaseRelease { lease_id: 3 },
        ClientMessage::WorkerSpawn {
            lease_id: 3,
            worker_id: "t12-w0".into(),
            script_url: "http://127.0.0.1:8080/worker.js".into(),
            source: "onmessage = (e) => postMessage(e.data * 2);".into(),
        },
        ClientMessage::WorkerMessage {
            worker_id: "t12-w0".into(),
            data: json!({"n": 21}),
        },
        ClientMessage::WorkerTerminate {
            worker_id: "t12-w0".into(),
        },
        ClientMessage::Unknown,
    ]
}

pub fn lease() -> Lease {
    Lease {
        lease_id: 3,
        resources: resources(),
        ttl_ms: 144_000,
        expires_at_ms: 1_796_000_144_000,
        epoch: 3,
    }
}

pub fn server_messages() -> Vec<ServerMessage> {
    vec![
        ServerMessage::Hello {
            protocol_version: PROTOCOL_VERSION,
            broker: "foresight-broker/0.1.0".into(),
            capacity: ResourceAmounts {
                cpu_millicores: 2000,
                memory_bytes: 12_884_901_888,
                bandwidth_bytes_per_s: 0,
            },
        },
        ServerMessage::LeaseGranted {
            request_id: 1,
            lease: lease(),
        },
        ServerMessage::LeaseDenied {
            request_id: 2,
            reason: DenyReason::Infeasible,
            message: "asked for 64000 millicores; the pool has 2000".into(),
        },
        ServerMessage::LeaseRenewed {
            lease_id: 3,
            expires_at_ms: 1_796_000_204_000,
        },
        ServerMessage::LeaseReleased { lease_id: 3 },
        ServerMessage::LeaseEnded {
            lease_id: 3,
            reason: LeaseEndReason::Expired,
        },
        ServerMessage::WorkerStarted {
            worker_id: "t12-w0".into(),
        },
        ServerMessage::WorkerMessage {
            worker_id: "t12-w0".into(),
            data: json!(42),
        },
        ServerMessage::WorkerError {
            worker_id: "t12-w0".into(),
            message: "ReferenceError: x is not defined".into(),
            filename: Some("http://127.0.0.1:8080/worker.js".into()),
            lineno: Some(3),
        },
        ServerMessage::WorkerExited {
            worker_id: "t12-w0".into(),
            reason: WorkerExitReason::CpuLimit,
        },
        ServerMessage::Error {
            code: ErrorCode::NotFound,
            message: "no lease 9 on this connection".into(),
            request_id: None,
        },
        ServerMessage::Unknown,
    ]
}

pub fn to_executor() -> Vec<ToExecutor> {
    vec![
        ToExecutor::Start {
            script_url: "http://127.0.0.1:8080/worker.js".into(),
            source: "onmessage = (e) => postMessage(e.data * 2);".into(),
            limits: ExecutorLimits {
                cpu_ms: 144_000,
                memory_bytes: 41_943_040,
                stack_bytes: 1_048_576,
            },
        },
        ToExecutor::Message { data: json!(21) },
        ToExecutor::Terminate,
        ToExecutor::Unknown,
    ]
}

pub fn from_executor() -> Vec<FromExecutor> {
    vec![
        FromExecutor::Started,
        FromExecutor::Message { data: json!(42) },
        FromExecutor::Error {
            message: "ReferenceError: x is not defined".into(),
            lineno: Some(3),
        },
        FromExecutor::Console {
            level: ConsoleLevel::Log,
            text: "hello from the worker".into(),
        },
        FromExecutor::Exited {
            reason: WorkerExitReason::Closed,
        },
        FromExecutor::Unknown,
    ]
}
