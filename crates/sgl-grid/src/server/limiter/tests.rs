//! The caps, counted without sockets.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::*;

fn limiter(total: usize, per_client: usize) -> (ConnectionLimiter, Arc<ConnectionStats>) {
    let stats = Arc::new(ConnectionStats::default());
    (ConnectionLimiter::new(Caps { total, per_client }, Arc::clone(&stats)), stats)
}

fn v4(last: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(192, 0, 2, last))
}

#[test]
fn a_client_at_its_cap_is_refused_while_others_are_admitted() {
    let (limiter, stats) = limiter(100, 3);
    let slots: Vec<_> = (0..3).map(|_| limiter.try_admit(v4(1)).unwrap()).collect();
    assert_eq!(limiter.try_admit(v4(1)).unwrap_err(), Refusal::PerAddress);
    let other = limiter.try_admit(v4(2)).unwrap();
    assert_eq!((limiter.open(), limiter.open_from(v4(1)), stats.open()), (4, 3, 4));
    assert_eq!((stats.refused_count(Refusal::PerAddress), stats.refused_count(Refusal::Total)), (1, 0));
    drop(slots);
    drop(other);
    assert_eq!((limiter.open(), limiter.clients(), stats.open()), (0, 0, 0));
}

#[test]
fn a_dropped_slot_makes_room_for_the_same_client() {
    let (limiter, _) = limiter(100, 1);
    let first = limiter.try_admit(v4(1)).unwrap();
    assert!(limiter.try_admit(v4(1)).is_err());
    drop(first);
    let again = limiter.try_admit(v4(1)).unwrap();
    assert_eq!(limiter.open_from(v4(1)), 1);
    drop(again);
}

#[test]
fn the_total_cap_holds_across_clients() {
    let (limiter, stats) = limiter(5, 2);
    let slots: Vec<_> = (0..5).map(|n| limiter.try_admit(v4(n / 2)).unwrap()).collect();
    // Client 2 holds one connection, below its own cap: the grid as a whole is full.
    assert_eq!(limiter.try_admit(v4(2)).unwrap_err(), Refusal::Total);
    // Client 0 is at its own cap as well: that is what it is told.
    assert_eq!(limiter.try_admit(v4(0)).unwrap_err(), Refusal::PerAddress);
    assert_eq!(limiter.try_admit(v4(9)).unwrap_err(), Refusal::Total);
    assert_eq!((stats.refused_count(Refusal::Total), stats.refused_count(Refusal::PerAddress)), (2, 1));
    drop(slots);
    assert!(limiter.try_admit(v4(9)).is_ok());
}

#[test]
fn ipv6_clients_count_by_64_bit_network_and_mapped_ipv4_as_ipv4() {
    let (limiter, _) = limiter(100, 2);
    let in_net = |low: u16| IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 1, 2, 0, 0, 0, low));
    let _a = limiter.try_admit(in_net(1)).unwrap();
    let _b = limiter.try_admit(in_net(2)).unwrap();
    assert_eq!(limiter.try_admit(in_net(3)).unwrap_err(), Refusal::PerAddress);
    let next_net = IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 1, 3, 0, 0, 0, 1));
    let _c = limiter.try_admit(next_net).unwrap();
    let mapped = IpAddr::V6(Ipv4Addr::new(192, 0, 2, 7).to_ipv6_mapped());
    let _d = limiter.try_admit(mapped).unwrap();
    assert_eq!(limiter.open_from(v4(7)), 1);
}

#[test]
fn counts_stay_exact_under_concurrent_admits_and_drops() {
    let (limiter, stats) = limiter(1_000, 1_000);
    let limiter = Arc::new(limiter);
    let threads: Vec<_> = (0..8u8)
        .map(|n| {
            let limiter = Arc::clone(&limiter);
            std::thread::spawn(move || {
                for _ in 0..500 {
                    let slot = limiter.try_admit(v4(n % 3)).unwrap();
                    drop(slot);
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().unwrap();
    }
    assert_eq!((limiter.open(), limiter.clients(), stats.open()), (0, 0, 0));
}
