//! Task events forwarded to containerd as containerd 1.6+ shims do: a ttrpc call
//! `containerd.services.events.ttrpc.v1.Events/Forward` on TTRPC_ADDRESS with an Envelope
//! (timestamp, namespace, topic, the event as Any). Events go out in order, one Forward at a
//! time (containerd handles the requests of one connection concurrently, so pipelining them
//! could reorder them), but off the request path: publishing queues the event and sends it if
//! none is in flight; the event loop polls the connection ([`Publisher::fd`]) and sends the
//! next one when containerd has answered ([`Publisher::on_readable`]), as the Go shims' event
//! queue does. When containerd is away (restarting), events wait in a bounded queue and the
//! loop retries every second ([`Publisher::needs_retry`]), so an exit during a restart still
//! arrives; an event in flight on a connection that breaks is sent again.

use crate::proto::{Any, Envelope, ForwardRequest, Timestamp};
use crate::ttrpc::Client;
use prost::Message;
use std::collections::VecDeque;
use std::os::fd::RawFd;

/// Events kept while containerd cannot be reached; older ones are dropped beyond this.
const MAX_QUEUED: usize = 1024;
const SERVICE: &str = "containerd.services.events.ttrpc.v1.Events";

/// Publishes events for one namespace.
pub struct Publisher {
    address: String,
    namespace: String,
    client: Option<Client>,
    /// Encoded ForwardRequests not yet answered, oldest first.
    queue: VecDeque<Vec<u8>>,
    /// Stream id of the front event, once sent.
    inflight: Option<u32>,
}

impl Publisher {
    /// A publisher to containerd's ttrpc `address` (may be empty: events are then dropped).
    pub fn new(address: String, namespace: String) -> Publisher {
        Publisher {
            address,
            namespace,
            client: None,
            queue: VecDeque::new(),
            inflight: None,
        }
    }

    /// Queues one event (`topic` such as `/tasks/exit`, `name` such as
    /// `containerd.events.TaskExit`) and sends it unless an earlier one is in flight.
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
            // Never the one in flight: its answer pops the front.
            let at = usize::from(self.inflight.is_some());
            self.queue.remove(at);
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

    /// Events not yet delivered.
    pub fn pending(&self) -> bool {
        !self.queue.is_empty()
    }

    /// containerd could not be reached and events wait: the loop calls [`Publisher::flush`]
    /// again after a while.
    pub fn needs_retry(&self) -> bool {
        self.client.is_none() && !self.queue.is_empty()
    }

    /// The connection to poll for containerd's answers, while one is awaited.
    pub fn fd(&self) -> Option<RawFd> {
        self.inflight.and(self.client.as_ref()).map(|c| c.fd())
    }

    /// Sends the front event if none is in flight (connecting first if needed).
    pub fn flush(&mut self) {
        if self.inflight.is_some() {
            return;
        }
        let Some(payload) = self.queue.front().cloned() else {
            return;
        };
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
        match c.send(SERVICE, "Forward", payload) {
            Ok(id) => self.inflight = Some(id),
            Err(e) => {
                // A stale connection (containerd restarted): once more on a new one.
                tracing::debug!("events: forward: {e}; reconnecting");
                self.client = None;
                if let Ok(mut c) = Client::connect(&self.address) {
                    let payload = self.queue.front().cloned().unwrap_or_default();
                    if let Ok(id) = c.send(SERVICE, "Forward", payload) {
                        self.inflight = Some(id);
                        self.client = Some(c);
                    }
                }
            }
        }
    }

    /// containerd's connection is readable: takes its answers and sends the next event.
    pub fn on_readable(&mut self) {
        let Some(c) = self.client.as_mut() else {
            return;
        };
        match c.responses() {
            Ok(answers) => {
                for (id, err) in answers {
                    if self.inflight == Some(id) {
                        if let Some(e) = err {
                            // containerd refused this event: retrying would not help.
                            tracing::warn!("events: containerd refused an event: {e}");
                        }
                        self.queue.pop_front();
                        self.inflight = None;
                    }
                }
            }
            Err(e) => {
                tracing::debug!("events: connection to containerd: {e}; event kept for retry");
                self.client = None;
                self.inflight = None;
            }
        }
        self.flush();
    }
}
