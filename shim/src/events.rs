//! Task events forwarded to containerd as containerd 1.6+ shims do: a ttrpc call
//! `containerd.services.events.ttrpc.v1.Events/Forward` on TTRPC_ADDRESS with an Envelope
//! (timestamp, namespace, topic, the event as Any). Sent synchronously from the event loop, in
//! order. When containerd is away (restarting), events wait in a bounded queue and the loop
//! retries every second ([`Publisher::pending`]), so an exit during a restart still arrives.

use crate::proto::{Any, Envelope, ForwardRequest, Timestamp};
use crate::ttrpc::Client;
use prost::Message;
use std::collections::VecDeque;

/// Events kept while containerd cannot be reached; older ones are dropped beyond this.
const MAX_QUEUED: usize = 1024;

/// Publishes events for one namespace.
pub struct Publisher {
    address: String,
    namespace: String,
    client: Option<Client>,
    queue: VecDeque<Vec<u8>>,
}

impl Publisher {
    /// A publisher to containerd's ttrpc `address` (may be empty: events are then dropped).
    pub fn new(address: String, namespace: String) -> Publisher {
        Publisher {
            address,
            namespace,
            client: None,
            queue: VecDeque::new(),
        }
    }

    /// Queues one event (`topic` such as `/tasks/exit`, `name` such as
    /// `containerd.events.TaskExit`) and sends what is queued.
    pub fn publish(&mut self, topic: &str, name: &str, event: &impl Message) {
        if self.address.is_empty() {
            return;
        }
        let env = Envelope {
            timestamp: Some(Timestamp::now()),
            namespace: self.namespace.clone(),
            topic: topic.to_string(),
            event: Some(Any::pack(name, event)),
        };
        if self.queue.len() >= MAX_QUEUED {
            self.queue.pop_front();
            tracing::warn!("events: queue full, oldest event dropped");
        }
        self.queue.push_back(
            ForwardRequest {
                envelope: Some(env),
            }
            .encode_to_vec(),
        );
        self.flush();
    }

    /// Events still waiting for containerd.
    pub fn pending(&self) -> bool {
        !self.queue.is_empty()
    }

    /// Sends queued events in order until one fails (it stays queued).
    pub fn flush(&mut self) {
        while let Some(payload) = self.queue.front() {
            if self.client.is_none() {
                match Client::connect(&self.address) {
                    Ok(c) => self.client = Some(c),
                    Err(e) => {
                        tracing::debug!("events: connect {}: {e}", self.address);
                        return;
                    }
                }
            }
            let Some(c) = self.client.as_mut() else {
                return;
            };
            match c.call(
                "containerd.services.events.ttrpc.v1.Events",
                "Forward",
                payload.clone(),
            ) {
                Ok(_) => {
                    self.queue.pop_front();
                }
                Err(e) => {
                    // A stale connection (containerd restarted): retry once on a new one.
                    self.client = None;
                    match Client::connect(&self.address).and_then(|mut c| {
                        let r = c.call(
                            "containerd.services.events.ttrpc.v1.Events",
                            "Forward",
                            payload.clone(),
                        );
                        self.client = Some(c);
                        r
                    }) {
                        Ok(_) => {
                            self.queue.pop_front();
                        }
                        Err(e2) => {
                            tracing::debug!("events: forward failed ({e}; {e2}); kept for retry");
                            self.client = None;
                            return;
                        }
                    }
                }
            }
        }
    }
}
