//! A connection's workers: `worker_spawn` (checked against its lease, started in a spare
//! QuickJS executor or a pooled Node child, bound to a data channel when it names one),
//! page -> worker data, `worker_terminate`, and the workers' output back to the client (or
//! to their data channel), in order.

use super::*;

impl Connection {
    pub(super) async fn on_worker_spawn(
        &mut self,
        lease_id: LeaseId,
        worker_id: String,
        script: Script,
        epoch: Option<u64>,
    ) -> WsResult<()> {
        let client = self.client_id;
        // An ended lease is announced before the refusal that it explains.
        let lease = self
            .engine(|s, now, out| {
                s.advance(now, out);
                s.lease(client, lease_id).cloned()
            })
            .await?;
        let Some(lease) = lease else {
            self.lease_not_found(lease_id).await?;
            return self.spawn_refused(worker_id, &script).await;
        };
        if let Some(epoch) = epoch
            && epoch != lease.epoch
        {
            self.send_error(
                ErrorCode::BadState,
                format!(
                    "worker {worker_id:?} not started: epoch {epoch} is stale; lease \
                     {lease_id} has epoch {}",
                    lease.epoch
                ),
                None,
            )
            .await?;
            return self.spawn_refused(worker_id, &script).await;
        }
        if self.workers.contains_key(&worker_id) {
            return self
                .send_error(
                    ErrorCode::BadState,
                    format!("worker {worker_id:?} already exists on this connection"),
                    None,
                )
                .await;
        }
        if lease.resources.cpu_millicores == 0 || lease.resources.memory_bytes < MIN_HEAP_BYTES {
            self.send_error(
                ErrorCode::BadState,
                format!(
                    "lease {lease_id} cannot run a worker: it needs some CPU and at least \
                     {MIN_HEAP_BYTES} bytes of memory"
                ),
                None,
            )
            .await?;
            return self.spawn_refused(worker_id, &script).await;
        }
        let under_lease = self
            .workers
            .values()
            .filter(|w| w.lease_id == lease_id)
            .count();
        if under_lease >= MAX_WORKERS_PER_LEASE {
            self.send_error(
                ErrorCode::BadState,
                format!(
                    "lease {lease_id} already runs {MAX_WORKERS_PER_LEASE} workers, the most one \
                     lease may"
                ),
                None,
            )
            .await?;
            return self.spawn_refused(worker_id, &script).await;
        }
        if let Some(channel_id) = &script.channel_id
            && !self.shared.channels.contains(channel_id)
        {
            let channel_id = channel_id.clone();
            return self
                .refuse_channel(worker_id, &channel_id, "is not open")
                .await;
        }
        // The lease's CPU share over its whole TTL is the worker's CPU-time budget; its
        // memory is the worker's heap.
        let limits = ExecutorLimits {
            cpu_ms: lease.ttl_ms.saturating_mul(lease.resources.cpu_millicores) / 1000,
            memory_bytes: lease.resources.memory_bytes,
            stack_bytes: WORKER_STACK_BYTES,
        };
        let engine = script.engine.unwrap_or(self.shared.config.default_engine);
        let process = match (engine, &self.shared.config.node) {
            (EngineKind::Quickjs, _) => {
                let spare = match self.spare.take() {
                    Some(spare) => spare.ready().await,
                    None => None,
                };
                workers::Process::quickjs(&self.shared.config.executor, spare)
            }
            (EngineKind::Node, Some(node)) => {
                let live = node.live.load(std::sync::atomic::Ordering::Acquire);
                if live >= node.settings.max_workers {
                    self.send_error(
                        ErrorCode::LimitExceeded,
                        format!(
                            "worker {worker_id:?} not started: the node engine already runs \
                             {live} workers, its most"
                        ),
                        None,
                    )
                    .await?;
                    return self.spawn_refused(worker_id, &script).await;
                }
                workers::Process::node(node)
            }
            (other, _) => {
                self.send_error(
                    ErrorCode::Unsupported,
                    format!(
                        "worker {worker_id:?} not started: engine {other:?} is not offered by \
                         this broker (see engines in its hello)"
                    ),
                    None,
                )
                .await?;
                return self.spawn_refused(worker_id, &script).await;
            }
        };
        let serial = self.next_serial;
        self.next_serial += 1;
        let channel_id = script.channel_id;
        let spec = WorkerSpec {
            worker_id: worker_id.clone(),
            lease_id,
            script_url: script.script_url,
            source: script.source,
            imports: script.imports,
            name: script.name,
            module: script.module,
            limits,
            cpu_millicores: lease.resources.cpu_millicores,
        };
        let spawned = process.and_then(|process| {
            workers::spawn(
                process,
                spec,
                serial,
                self.worker_tx.clone(),
                self.shared.events.clone(),
                &mut self.tasks,
            )
        });
        match spawned {
            Ok(handle) => {
                tracing::debug!(
                    client_id = self.client_id,
                    worker_id,
                    pid = handle.pid,
                    "executor spawned"
                );
                let Some(channel_id) = channel_id else {
                    self.workers.insert(worker_id, handle);
                    return Ok(());
                };
                let bound = self.shared.channels.bind(
                    &channel_id,
                    &worker_id,
                    self.client_id,
                    self.worker_tx.clone(),
                    serial,
                    handle.input(),
                );
                match bound {
                    Ok((channel_client_id, link)) => {
                        self.shared.events.emit(BrokerEvent::WorkerBound {
                            client_id: self.client_id,
                            channel_client_id,
                            worker_id: worker_id.clone(),
                        });
                        // Before any output of the worker: the channel may send it data.
                        let told = link
                            .send_json(&ServerMessage::WorkerBound {
                                worker_id: worker_id.clone(),
                            })
                            .await;
                        if !told {
                            tracing::debug!(worker_id, "data channel gone at bind");
                        }
                        self.workers.insert(worker_id.clone(), handle);
                        self.bound.insert(worker_id, link);
                        Ok(())
                    }
                    Err(e) => {
                        handle.kill(WorkerExitReason::ChannelClosed);
                        let why = match e {
                            channel::BindError::Unknown => "is not open",
                            channel::BindError::Taken => "already carries a worker of that id",
                        };
                        self.refuse_channel(worker_id, &channel_id, why).await
                    }
                }
            }
            Err(e) => {
                tracing::error!(
                    "cannot start executor {:?}: {e}",
                    self.shared.config.executor.program
                );
                self.send_error(
                    ErrorCode::Internal,
                    format!("worker {worker_id:?} could not be started: {e}"),
                    None,
                )
                .await
            }
        }
    }

    /// A binary frame: a worker message in structured-clone bytes.
    pub(super) async fn on_binary(&mut self, frame: &[u8]) -> WsResult<()> {
        if !self.greeted {
            return self
                .send_error(ErrorCode::BadState, "the first message must be hello", None)
                .await;
        }
        match decode_worker_frame(frame) {
            Ok((worker_id, payload)) => {
                let worker_id = worker_id.to_string();
                self.on_worker_data(&worker_id, payload).await
            }
            Err(e) => {
                self.send_error(
                    ErrorCode::InvalidMessage,
                    format!("unreadable binary frame: {e}"),
                    None,
                )
                .await
            }
        }
    }

    /// `postMessage` from the page to a worker, as structured-clone bytes: relayed to its
    /// executor undecoded (the executor decodes it, inside the sandbox).
    pub(super) async fn on_worker_data(&mut self, worker_id: &str, data: &[u8]) -> WsResult<()> {
        if !self.workers.contains_key(worker_id) {
            return self.worker_not_found(worker_id).await;
        }
        if self.bound.contains_key(worker_id) {
            // One ordered source of input per worker.
            return self
                .send_error(
                    ErrorCode::BadState,
                    format!(
                        "worker {worker_id:?} takes its data through its data channel; not \
                         delivered"
                    ),
                    None,
                )
                .await;
        }
        let input = self.workers.get(worker_id).map(WorkerHandle::input);
        self.relay_to_worker(worker_id, data, input).await
    }

    /// After the `error` refusing a `worker_spawn`: the worker's end, `refused`, so that its
    /// owner can run it elsewhere rather than wait for a start that will not come; and the
    /// same to the data channel it named, whose side may be holding the worker's messages.
    pub(super) async fn spawn_refused(
        &mut self,
        worker_id: String,
        script: &Script,
    ) -> WsResult<()> {
        let exited = ServerMessage::WorkerExited {
            worker_id,
            reason: WorkerExitReason::Refused,
            cpu_ms: None,
        };
        if let Some(link) = script
            .channel_id
            .as_deref()
            .and_then(|id| self.shared.channels.link(id))
        {
            link.send_json(&exited).await;
        }
        self.send(exited).await
    }

    /// `postMessage` data for worker `worker_id` (from this connection or, for a worker bound
    /// to a data channel, from the channel): size-checked, queued to its executor's `input`
    /// (`None`: the worker has just ended, and its end is on the way), and announced to
    /// event listeners; a typed error to this connection when it cannot be delivered.
    pub(super) async fn relay_to_worker(
        &mut self,
        worker_id: &str,
        data: &[u8],
        input: Option<workers::WorkerInput>,
    ) -> WsResult<()> {
        if data.len() > WORKER_MAX_MESSAGE {
            let message = format!(
                "worker message of {} bytes exceeds the {WORKER_MAX_MESSAGE}-byte limit; not \
                 delivered",
                data.len()
            );
            return self.send_error(ErrorCode::TooLarge, message, None).await;
        }
        match input.map_or(Err(QueueError::Gone), |input| input.post(data)) {
            Ok(()) => {
                if self.shared.events.wanted() {
                    self.shared.events.emit(BrokerEvent::WorkerMessageIn {
                        worker_id: worker_id.to_string(),
                        data: sclone::describe(data),
                    });
                }
                Ok(())
            }
            // Its end is already on the way to the client.
            Err(QueueError::Gone) => Ok(()),
            Err(QueueError::Full { pending }) => {
                let message = format!(
                    "worker {worker_id:?} is not keeping up ({pending} bytes waiting); message \
                     not delivered"
                );
                self.send_error(ErrorCode::BadState, message, None).await
            }
            Err(QueueError::Encode(e)) => {
                let message = format!("worker message not delivered: {e}");
                self.send_error(ErrorCode::TooLarge, message, None).await
            }
        }
    }

    pub(super) async fn on_worker_terminate(&mut self, worker_id: String) -> WsResult<()> {
        match self.workers.remove(&worker_id) {
            Some(worker) => {
                let cpu_ms = worker.cpu_ms();
                worker.kill(WorkerExitReason::Terminated);
                if let Some(link) = self.unbind(&worker_id) {
                    link.send_json(&ServerMessage::WorkerExited {
                        worker_id: worker_id.clone(),
                        reason: WorkerExitReason::Terminated,
                        cpu_ms,
                    })
                    .await;
                }
                self.send(ServerMessage::WorkerExited {
                    worker_id,
                    reason: WorkerExitReason::Terminated,
                    cpu_ms,
                })
                .await
            }
            None => self.worker_not_found(&worker_id).await,
        }
    }

    pub(super) async fn worker_not_found(&mut self, worker_id: &str) -> WsResult<()> {
        self.send_error(
            ErrorCode::NotFound,
            format!("no live worker {worker_id:?} on this connection"),
            None,
        )
        .await
    }

    pub(super) async fn on_worker_event(&mut self, event: WorkerEvent) -> WsResult<()> {
        let WorkerEvent {
            serial,
            worker_id,
            output,
        } = event;
        let Some(worker) = self.workers.get_mut(&worker_id) else {
            // Killed at the connection's request: already reported.
            return Ok(());
        };
        if worker.serial != serial {
            return Ok(());
        }
        // The top level may post before it finishes: the client hears `worker_started`
        // before the worker's first output either way.
        let announce = !worker.announced
            && matches!(
                output,
                WorkerOutput::Started | WorkerOutput::Message(_) | WorkerOutput::Error { .. }
            );
        if announce {
            worker.announced = true;
            self.shared.events.emit(BrokerEvent::WorkerStarted {
                client_id: self.client_id,
                lease_id: worker.lease_id,
                worker_id: worker_id.clone(),
                script_url: worker.script_url.clone(),
                executor_pid: worker.pid,
                engine: worker.engine,
            });
            let engine = worker.engine;
            self.send(ServerMessage::WorkerStarted {
                worker_id: worker_id.clone(),
                engine: Some(engine),
            })
            .await?;
            // A connection that starts workers is likely to start more: have the next
            // executor process ready, sandboxed and waiting. Started only now, so that forking
            // it never delays the start of the worker that is being announced, and off this
            // task's thread (`SpareStart`), so that it does not delay that announcement's way
            // to the client either.
            if engine == EngineKind::Node
                && let Some(node) = &self.shared.config.node
            {
                node.refill();
            }
            if self.spare.is_none() && engine == EngineKind::Quickjs {
                self.spare = Some(workers::SpareStart::begin(
                    &self.shared.config.executor,
                    self.shared.events.clone(),
                ));
            }
        }
        match output {
            WorkerOutput::Started => Ok(()),
            WorkerOutput::Message(data) => {
                if self.shared.events.wanted() {
                    self.shared.events.emit(BrokerEvent::WorkerMessageOut {
                        worker_id: worker_id.clone(),
                        data: sclone::describe(&data),
                    });
                }
                if let Some(link) = self.bound.get(&worker_id) {
                    link.send(Message::binary(encode_worker_frame(&worker_id, &data)))
                        .await;
                    return Ok(());
                }
                self.send_worker_data(worker_id, &data).await
            }
            WorkerOutput::Error { message, lineno } => {
                let filename = self.workers.get(&worker_id).map(|w| w.script_url.clone());
                self.send_output(ServerMessage::WorkerError {
                    worker_id,
                    message,
                    filename,
                    lineno,
                })
                .await
            }
            WorkerOutput::Console { level, text } => {
                tracing::debug!(
                    target: "foresight_broker::worker_console",
                    client_id = self.client_id,
                    worker_id,
                    ?level,
                    "{text}"
                );
                self.send_output(ServerMessage::WorkerConsole {
                    worker_id,
                    level,
                    text,
                })
                .await
            }
            WorkerOutput::Ended(reason, cpu_ms) => {
                self.workers.remove(&worker_id);
                let exited = ServerMessage::WorkerExited {
                    worker_id: worker_id.clone(),
                    reason,
                    cpu_ms,
                };
                // The channel hears its worker's end after its last output; the owner too,
                // for its bookkeeping.
                if let Some(link) = self.unbind(&worker_id) {
                    link.send_json(&exited).await;
                }
                self.send(exited).await
            }
            WorkerOutput::ChannelClosed => {
                self.unbind(&worker_id);
                let cpu_ms = self.workers.remove(&worker_id).and_then(|worker| {
                    let cpu_ms = worker.cpu_ms();
                    worker.kill(WorkerExitReason::ChannelClosed);
                    cpu_ms
                });
                self.send(ServerMessage::WorkerExited {
                    worker_id,
                    reason: WorkerExitReason::ChannelClosed,
                    cpu_ms,
                })
                .await
            }
        }
    }

    /// A worker's console line or error: to its data channel if it has one, else here.
    pub(super) async fn send_output(&mut self, message: ServerMessage) -> WsResult<()> {
        let worker_id = match &message {
            ServerMessage::WorkerConsole { worker_id, .. }
            | ServerMessage::WorkerError { worker_id, .. } => worker_id,
            _ => return self.send(message).await,
        };
        if let Some(link) = self.bound.get(worker_id) {
            link.send_json(&message).await;
            return Ok(());
        }
        self.send(message).await
    }
}

/// A worker script as the client sent it.
pub(super) struct Script {
    pub(super) script_url: String,
    pub(super) source: String,
    pub(super) imports: Vec<ScriptSource>,
    pub(super) name: String,
    pub(super) module: bool,
    pub(super) engine: Option<EngineKind>,
    /// The data channel the worker's data goes through, if any.
    pub(super) channel_id: Option<String>,
}
