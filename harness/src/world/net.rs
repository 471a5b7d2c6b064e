//! Netlink (rtnetlink) operations inside one network namespace, and sysctl writes.

use std::net::{IpAddr, Ipv4Addr};
use std::os::fd::AsRawFd;

use futures::TryStreamExt;
use rtnetlink::packet_route::link::{InfoData, InfoVeth, LinkAttribute};
use rtnetlink::{LinkBridge, LinkMessageBuilder, LinkUnspec, LinkVeth, RouteMessageBuilder};
use tokio::task::JoinHandle;

use crate::error::{Context, Error, Result};
use crate::ns::NetNs;
use crate::world::plan::Cidr;

/// A netlink route connection bound to one network namespace (its socket was created by a
/// thread inside that namespace). The connection task is aborted on drop.
#[derive(Debug)]
pub struct Netlink {
    handle: rtnetlink::Handle,
    task: JoinHandle<()>,
}

impl Drop for Netlink {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Netlink {
    /// Opens a connection inside `ns`. Must be called inside a tokio runtime.
    pub async fn open(ns: &NetNs) -> Result<Netlink> {
        let rt = tokio::runtime::Handle::current();
        let (conn, handle, _) = ns
            .run(move || {
                let _guard = rt.enter();
                rtnetlink::new_connection()
            })?
            .ctx(|| "opening a netlink socket".into())?;
        Ok(Netlink { handle, task: tokio::spawn(conn) })
    }

    /// The raw rtnetlink handle, for operations this type does not wrap.
    pub fn handle(&self) -> &rtnetlink::Handle {
        &self.handle
    }

    /// Index of interface `name`.
    pub async fn index(&self, name: &str) -> Result<u32> {
        let msg = self
            .handle
            .link()
            .get()
            .match_name(name.to_string())
            .execute()
            .try_next()
            .await
            .ctx(|| format!("looking up link {name}"))?;
        msg.map(|m| m.header.index).ok_or_else(|| Error::NotFound(format!("no link named {name}")))
    }

    /// Sets a link up.
    pub async fn up(&self, index: u32) -> Result<()> {
        self.handle
            .link()
            .set(LinkUnspec::new_with_index(index).up().build())
            .execute()
            .await
            .ctx(|| format!("setting link {index} up"))
    }

    /// Sets a link down.
    pub async fn down(&self, index: u32) -> Result<()> {
        self.handle
            .link()
            .set(LinkUnspec::new_with_index(index).down().build())
            .execute()
            .await
            .ctx(|| format!("setting link {index} down"))
    }

    /// Adds an IPv4 address.
    pub async fn add_addr(&self, index: u32, ip: Ipv4Addr, prefix: u8) -> Result<()> {
        self.handle
            .address()
            .add(index, IpAddr::V4(ip), prefix)
            .execute()
            .await
            .ctx(|| format!("adding {ip}/{prefix} to link {index}"))
    }

    /// Creates a bridge (up, STP off) and returns its index.
    pub async fn add_bridge(&self, name: &str) -> Result<u32> {
        self.handle
            .link()
            .add(LinkBridge::new(name).forward_delay(0).build())
            .execute()
            .await
            .ctx(|| format!("creating bridge {name}"))?;
        self.index(name).await
    }

    /// Creates a veth pair: `name` here (up, attached to `controller` if given) and `peer_name`
    /// created directly inside `peer_ns`. Returns the index of `name`.
    pub async fn add_veth_into(&self, name: &str, peer_name: &str, peer_ns: &NetNs, controller: Option<u32>) -> Result<u32> {
        let peer = LinkMessageBuilder::<LinkUnspec>::new()
            .name(peer_name.to_string())
            .append_extra_attribute(LinkAttribute::NetNsFd(peer_ns.fd().as_raw_fd()))
            .build();
        let mut b = LinkVeth::new(name, peer_name).set_info_data(InfoData::Veth(InfoVeth::Peer(peer))).up();
        if let Some(c) = controller {
            b = b.controller(c);
        }
        self.handle
            .link()
            .add(b.build())
            .execute()
            .await
            .ctx(|| format!("creating veth {name} <-> {peer_name}"))?;
        self.index(name).await
    }

    /// Adds a route to `dst` via `gateway` and/or out of `oif`.
    pub async fn add_route(&self, dst: Cidr, gateway: Option<Ipv4Addr>, oif: Option<u32>) -> Result<()> {
        let mut b = RouteMessageBuilder::<Ipv4Addr>::new().destination_prefix(dst.addr, dst.prefix);
        if let Some(gw) = gateway {
            b = b.gateway(gw);
        }
        if let Some(i) = oif {
            b = b.output_interface(i);
        }
        self.handle
            .route()
            .add(b.build())
            .execute()
            .await
            .ctx(|| format!("adding route {dst} via {gateway:?} dev {oif:?}"))
    }
}

/// Writes a sysctl (`net.ipv4.ip_forward` style key) of the calling thread's namespaces.
pub(crate) fn write_sysctl(key: &str, value: &str) -> Result<()> {
    let path = format!("/proc/sys/{}", key.replace('.', "/"));
    std::fs::write(&path, value).ctx(|| format!("setting sysctl {key}={value}"))
}

/// Reads a sysctl of the calling thread's namespaces.
pub(crate) fn read_sysctl(key: &str) -> Result<String> {
    let path = format!("/proc/sys/{}", key.replace('.', "/"));
    Ok(std::fs::read_to_string(&path).ctx(|| format!("reading sysctl {key}"))?.trim().to_string())
}
