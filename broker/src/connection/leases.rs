//! The lease half of a connection: requests, renewals and releases go to the engine, and
//! what the engine decided for this client is told to it in the engine's order, ending a
//! lease's workers before the client hears the lease is gone.

use foresight_shared::protocol::ErrorCode;
use foresight_shared::protocol::broker::{
    LeaseEndReason, LeaseId, RevokeCause, ServerMessage, WorkerExitReason,
};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

use super::{Connection, WsResult};
use crate::scheduler::{EndReason, LeaseRequest, Notice, NoticeKind, RenewError, Scheduler};

impl Connection {
    /// Runs an engine operation for this client, then tells it, in the engine's order,
    /// everything the engine decided for it up to and including this operation.
    pub(super) async fn engine<T>(
        &mut self,
        op: impl FnOnce(&mut Scheduler, u64, &mut Vec<Notice>) -> T,
    ) -> WsResult<T> {
        let mut mine = std::mem::take(&mut self.mine);
        let result = self
            .shared
            .schedule_for(self.client_id, &mut self.notices, &mut mine, op);
        let mut sent = Ok(());
        for notice in mine.drain(..) {
            if sent.is_ok() {
                sent = self.deliver(notice).await;
            }
        }
        self.mine = mine;
        sent.map(|()| result)
    }

    /// The engine answers: granted, queued or denied.
    pub(super) async fn on_lease_request(&mut self, request: LeaseRequest) -> WsResult<()> {
        let client = self.client_id;
        self.engine(|s, now, out| s.request(client, request, now, out))
            .await
    }

    pub(super) async fn on_lease_renew(&mut self, lease_id: LeaseId, ttl_ms: u64) -> WsResult<()> {
        let client = self.client_id;
        // `lease_renewed`, or the `lease_ended` that explains a refusal, comes first.
        let renewed = self
            .engine(|s, now, out| s.renew(client, lease_id, ttl_ms, now, out))
            .await?;
        match renewed {
            Ok(()) => Ok(()),
            Err(RenewError::NotFound) => self.lease_not_found(lease_id).await,
            Err(RenewError::Revoking { ends_at_ms }) => {
                self.send_error(
                    ErrorCode::BadState,
                    format!(
                        "lease {lease_id} not renewed: it is being revoked and ends at \
                         {ends_at_ms}"
                    ),
                    None,
                )
                .await
            }
            // The protocol has no typed refusal for renewals; the lease keeps its deadline.
            Err(RenewError::InvalidTtl(message)) => {
                self.send_error(
                    ErrorCode::InvalidMessage,
                    format!("lease {lease_id} not renewed: {message}"),
                    None,
                )
                .await
            }
        }
    }

    pub(super) async fn on_lease_release(&mut self, lease_id: LeaseId) -> WsResult<()> {
        let client = self.client_id;
        let released = self
            .engine(|s, now, out| s.release(client, lease_id, now, out))
            .await?;
        if released {
            Ok(())
        } else {
            self.lease_not_found(lease_id).await
        }
    }

    pub(super) async fn lease_not_found(&mut self, lease_id: LeaseId) -> WsResult<()> {
        self.send_error(
            ErrorCode::NotFound,
            format!("no live lease {lease_id} on this connection"),
            None,
        )
        .await
    }

    /// Sends what the engine decided for this client so far, in order.
    pub(super) async fn deliver_pending(&mut self) -> WsResult<()> {
        while let Ok(notice) = self.notices.try_recv() {
            self.deliver(notice).await?;
        }
        Ok(())
    }

    /// Tells the client one thing the engine decided. A lease that ended loses its workers
    /// first.
    pub(super) async fn deliver(&mut self, notice: NoticeKind) -> WsResult<()> {
        let message = match notice {
            NoticeKind::Granted {
                request_id, lease, ..
            } => ServerMessage::LeaseGranted { request_id, lease },
            NoticeKind::Queued {
                request_id,
                position,
                estimated_wait_ms,
            } => ServerMessage::LeaseQueued {
                request_id,
                position,
                estimated_wait_ms,
            },
            NoticeKind::Denied {
                request_id,
                reason,
                message,
            } => ServerMessage::LeaseDenied {
                request_id,
                reason,
                message,
            },
            NoticeKind::Renewed {
                lease_id,
                expires_at_ms,
            } => ServerMessage::LeaseRenewed {
                lease_id,
                expires_at_ms,
            },
            NoticeKind::Revoking {
                lease_id,
                cause,
                ends_at_ms,
            } => ServerMessage::LeaseRevoking {
                lease_id,
                cause,
                ends_at_ms,
            },
            NoticeKind::Released { lease_id } => {
                return self
                    .end_lease(lease_id, ServerMessage::LeaseReleased { lease_id })
                    .await;
            }
            NoticeKind::Ended { lease_id, reason } => {
                let reason = match reason {
                    EndReason::Expired => LeaseEndReason::Expired,
                    EndReason::Revoked(RevokeCause::ShuttingDown) => LeaseEndReason::ShuttingDown,
                    EndReason::Revoked(_) => LeaseEndReason::Revoked,
                    EndReason::Disconnected => {
                        self.kill_lease_workers(lease_id);
                        return Ok(());
                    }
                };
                return self
                    .end_lease(lease_id, ServerMessage::LeaseEnded { lease_id, reason })
                    .await;
            }
        };
        self.send(message).await
    }

    /// The rest of ending a lease the engine already removed: kill its workers, then tell
    /// the client (`worker_exited` for each, then `announcement`).
    pub(super) async fn end_lease(
        &mut self,
        lease_id: LeaseId,
        announcement: ServerMessage,
    ) -> WsResult<()> {
        let killed = self.kill_lease_workers(lease_id);
        for worker_id in killed {
            self.send(ServerMessage::WorkerExited {
                worker_id,
                reason: WorkerExitReason::LeaseEnded,
                cpu_ms: None,
            })
            .await?;
        }
        self.send(announcement).await
    }

    pub(super) fn kill_lease_workers(&mut self, lease_id: LeaseId) -> Vec<String> {
        let mut ids: Vec<String> = self
            .workers
            .iter()
            .filter(|(_, w)| w.lease_id == lease_id)
            .map(|(id, _)| id.clone())
            .collect();
        ids.sort();
        for id in &ids {
            if let Some(worker) = self.workers.remove(id) {
                worker.kill(WorkerExitReason::LeaseEnded);
            }
            self.exited_to_channel_later(id, WorkerExitReason::LeaseEnded, None);
        }
        ids
    }

    /// Shutdown: every lease still held ends with `shutting_down`, then the websocket closes.
    pub(super) async fn farewell(&mut self) -> WsResult<()> {
        let client = self.client_id;
        self.engine(|s, _, out| {
            s.end_all(client, EndReason::Revoked(RevokeCause::ShuttingDown), out)
        })
        .await?;
        self.close(CloseCode::Away, "broker shutting down").await
    }

    /// Whatever is left when the connection ends: release the leases, kill the workers.
    pub(super) fn release_everything(&mut self) {
        // The spare executor is killed on drop.
        self.spare = None;
        self.shared.disconnect(self.client_id);
        let workers: Vec<_> = self.workers.drain().collect();
        for (worker_id, worker) in workers {
            worker.kill(WorkerExitReason::LeaseEnded);
            self.exited_to_channel_later(&worker_id, WorkerExitReason::LeaseEnded, None);
        }
    }
}
