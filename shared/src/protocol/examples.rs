//! One example of every message, used by the round-trip tests and to generate the examples
//! in `docs/PROTOCOL.md` (a test fails when the document is stale; run
//! `FORESIGHT_BLESS=1 cargo test -p foresight-shared` to regenerate it).

use serde_json::json;

use super::broker::{
    ClientMessage, ConnectionRole, DenyReason, EngineKind, EngineOffer, FEATURE_DATA_CHANNEL,
    FEATURE_STRUCTURED_CLONE, Lease, LeaseEndReason, RevokeCause, ScriptSource, ServerMessage,
    WorkerExitReason,
};
use super::demand::{
    ComponentDemand, ComponentKind, CurveBucket, DemandCurve, GraphSummary, PageDemand, PathDemand,
    PathKind,
};
use super::executor::{ConsoleLevel, ExecutorLimits, FromExecutor, ToExecutor};
use super::host::{HostReply, HostRequest};
use super::plan::{
    BrokerTerms, ContentionForecast, ContentionSnapshot, ContentionSource, EngineTerms,
    NetworkThroughput, PathPlan, Placement, Plan, PlanSource, Policy, Pressure, ProcessGroupUsage,
    RemoteRequest, ResourceAmounts, TabLoad, Target,
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
        per_core_usage: vec![0.3, 0.2],
        swap_total_bytes: 0,
        swap_used_bytes: 0,
        runnable_tasks: Some(1.2),
        network: Some(NetworkThroughput {
            rx_bytes_per_s: 12_000.0,
            tx_bytes_per_s: 3_000.0,
        }),
        browser: Some(ProcessGroupUsage {
            processes: 9,
            cpu_millicores: 180,
            memory_bytes: 1_200_000_000,
        }),
        others: Some(ProcessGroupUsage {
            processes: 140,
            cpu_millicores: 320,
            memory_bytes: 1_500_000_000,
        }),
        pressure: Some(Pressure {
            cpu_some_avg10: Some(2.5),
            memory_some_avg10: Some(0.0),
            memory_full_avg10: Some(0.0),
            io_some_avg10: Some(0.1),
            io_full_avg10: Some(0.0),
        }),
        forecast: Some(ContentionForecast {
            horizon_ms: 5000,
            available_cpu_millicores: 1400,
            available_memory_bytes: 22_900_000_000,
            cpu_trend_millicores_per_s: -20.0,
            memory_trend_bytes_per_s: -20_000_000.0,
        }),
    }
}

pub fn broker_terms() -> BrokerTerms {
    BrokerTerms {
        available: true,
        rtt_ms: 0.8,
        capacity: resources(),
        speed_factor: Some(1.5),
        bandwidth_bytes_per_s: 50_000_000,
        startup_ms: Some(12.0),
        engines: vec![
            EngineTerms {
                engine: EngineKind::Quickjs,
                speed_factor: Some(14.4),
                startup_ms: Some(1.1),
                max_workers: 0,
            },
            EngineTerms {
                engine: EngineKind::Node,
                speed_factor: Some(1.0),
                startup_ms: Some(1.3),
                max_workers: 8,
            },
        ],
    }
}

pub fn tabs() -> Vec<TabLoad> {
    vec![
        TabLoad {
            tab_id: 4,
            active: true,
            visible: true,
            audible: false,
            discarded: false,
            predicted_cpu_ms: 35.0,
            predicted_memory_bytes: 24_000_000,
        },
        TabLoad {
            tab_id: 9,
            active: false,
            visible: false,
            audible: true,
            discarded: false,
            predicted_cpu_ms: 0.0,
            predicted_memory_bytes: 0,
        },
    ]
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
            reason: "predicted 3600 ms CPU, at least the 100 ms offload threshold (5433 ms remotely, 3600 ms here)".into(),
            local_ms: Some(3600.0),
            remote_ms: Some(5433.2),
            engine: Some(EngineKind::Node),
        }],
        reasons: vec![
            "load path needs 21 ms CPU and 1 components 3600 ms (p90); this page may use 700 of 1400 idle millicores (idle now 1500, forecast 1400 in 5 s)".into(),
            "lease 1000 millicores and 40 MiB for 144 s".into(),
            "expected to finish in 5433 ms".into(),
        ],
        paths: vec![PathPlan {
            name: "load".into(),
            local: ResourceAmounts {
                cpu_millicores: 21,
                memory_bytes: 4_000_000,
                bandwidth_bytes_per_s: 48_000,
            },
            remote: Some(resources()),
            remote_components: vec!["worker-0".into()],
        }],
        expected_completion_ms: Some(5433.2),
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
            broker: Some(broker_terms()),
            tabs: tabs(),
        },
        HostRequest::Contention { request_id: 8 },
        HostRequest::WatchContention {
            request_id: 9,
            enabled: true,
            min_interval_ms: Some(1000),
            cpu_change_millicores: Some(250),
            memory_change_bytes: Some(268_435_456),
        },
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
        HostReply::ContentionChanged {
            contention: contention(),
            reasons: vec!["idle CPU fell from 1900 to 1500 millicores".into()],
        },
        HostReply::Chunk {
            request_id: Some(7),
            index: 0,
            count: 3,
            data: "{\"type\":\"plan\",\"request_id\":7,\"plan\":{\"url\":".into(),
        },
        HostReply::Error {
            request_id: None,
            code: ErrorCode::InvalidJson,
            message: "frame is not valid JSON: expected value at line 1 column 1".into(),
        },
        HostReply::Unknown,
    ]
}

pub fn script_source() -> ScriptSource {
    ScriptSource {
        url: "http://127.0.0.1:8080/lib.js".into(),
        source: "function double(x) { return x * 2; }".into(),
    }
}

pub fn client_messages() -> Vec<ClientMessage> {
    vec![
        ClientMessage::Hello {
            protocol_version: PROTOCOL_VERSION,
            client: "foresight-extension/0.1.0 firefox".into(),
            token: None,
            features: vec![FEATURE_STRUCTURED_CLONE.into()],
            role: None,
        },
        ClientMessage::Hello {
            protocol_version: PROTOCOL_VERSION,
            client: "foresight-extension/0.1.0 chromium (tab data channel)".into(),
            token: Some("s3cret-token".into()),
            features: vec![FEATURE_STRUCTURED_CLONE.into(), FEATURE_DATA_CHANNEL.into()],
            role: Some(ConnectionRole::DataChannel),
        },
        ClientMessage::LeaseRequest {
            request_id: 1,
            resources: resources(),
            ttl_ms: 144_000,
            priority: 5,
            purpose: "http://127.0.0.1:8080/index.html".into(),
            min_resources: Some(ResourceAmounts {
                cpu_millicores: 250,
                memory_bytes: 41_943_040,
                bandwidth_bytes_per_s: 0,
            }),
            max_wait_ms: Some(5_000),
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
            source: "importScripts('lib.js'); onmessage = (e) => postMessage(double(e.data));"
                .into(),
            epoch: Some(3),
            imports: vec![script_source()],
            name: "doubler".into(),
            module: false,
            engine: Some(EngineKind::Node),
            channel_id: Some("c-5f0e3a9b2d7c41e8a6b0c3d2e1f4a5b6".into()),
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
            features: vec![FEATURE_STRUCTURED_CLONE.into()],
            engines: vec![
                EngineOffer {
                    engine: EngineKind::Quickjs,
                    kernel_ms: Some(312.4),
                    startup_ms: Some(1.1),
                    max_workers: 0,
                    webassembly: false,
                },
                EngineOffer {
                    engine: EngineKind::Node,
                    kernel_ms: Some(21.7),
                    startup_ms: Some(1.3),
                    max_workers: 8,
                    webassembly: true,
                },
            ],
            channel_id: None,
        },
        ServerMessage::Hello {
            protocol_version: PROTOCOL_VERSION,
            broker: "foresight-broker/0.1.0".into(),
            capacity: ResourceAmounts {
                cpu_millicores: 2000,
                memory_bytes: 12_884_901_888,
                bandwidth_bytes_per_s: 0,
            },
            features: vec![FEATURE_STRUCTURED_CLONE.into(), FEATURE_DATA_CHANNEL.into()],
            engines: Vec::new(),
            channel_id: Some("c-5f0e3a9b2d7c41e8a6b0c3d2e1f4a5b6".into()),
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
        ServerMessage::LeaseQueued {
            request_id: 1,
            position: 2,
            estimated_wait_ms: Some(1_200),
        },
        ServerMessage::LeaseRevoking {
            lease_id: 3,
            cause: RevokeCause::Preempted,
            ends_at_ms: 1_796_000_101_000,
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
            engine: Some(EngineKind::Node),
        },
        ServerMessage::WorkerBound {
            worker_id: "t12-w0".into(),
        },
        ServerMessage::WorkerMessage {
            worker_id: "t12-w0".into(),
            data: json!(42),
        },
        ServerMessage::WorkerConsole {
            worker_id: "t12-w0".into(),
            level: ConsoleLevel::Warn,
            text: "slow input: 3 items".into(),
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
            cpu_ms: Some(512),
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
            imports: vec![script_source()],
            name: "doubler".into(),
            module: false,
        },
        ToExecutor::Terminate,
        ToExecutor::Unknown,
    ]
}

pub fn from_executor() -> Vec<FromExecutor> {
    vec![
        FromExecutor::Ready,
        FromExecutor::Started,
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
            cpu_ms: Some(3),
        },
        FromExecutor::Unknown,
    ]
}
