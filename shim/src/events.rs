//! Task events forwarded to containerd as containerd 1.6+ shims do: a ttrpc call
//! `containerd.services.events.ttrpc.v1.Events/Forward` on TTRPC_ADDRESS with an Envelope
//! (timestamp, namespace, topic, the event as Any). Sent synchronously from the event loop; when
//! containerd is away (restarting) the connection is re-made on the next event, and an event
//! that cannot be delivered after one reconnect is logged and dropped.

use crate::proto::{Any, Envelope, ForwardRequest, Timestamp};
use crate::ttrpc::Client;
use prost::Message;

/// Publishes events for one namespace.
pub struct Publisher {
    address: String,
    namespace: String,
    client: Option<Client>,
}

impl Publisher {
    /// A publisher to containerd's ttrpc `address` (may be empty: events are then dropped).
    pub fn new(address: String, namespace: String) -> Publisher {
        Publisher {
            address,
            namespace,
            client: None,
        }
    }

    /// Sends one event: `topic` such as `/tasks/exit`, `name` such as `containerd.events.TaskExit`.
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
        let payload = ForwardRequest {
            envelope: Some(env),
        }
        .encode_to_vec();
        for attempt in 0..2 {
            if self.client.is_none() {
                match Client::connect(&self.address) {
                    Ok(c) => self.client = Some(c),
                    Err(e) => {
                        tracing::warn!(topic, "events: connect {}: {e}", self.address);
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
                Ok(_) => return,
                Err(e) => {
                    self.client = None;
                    if attempt == 1 {
                        tracing::warn!(topic, "events: forward failed, dropped: {e}");
                    }
                }
            }
        }
    }
}
