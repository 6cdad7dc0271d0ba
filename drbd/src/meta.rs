//! Size of DRBD 9 internal metadata (format v09, `meta-disk internal`), all sizes in KiB.
//!
//! Internal metadata sits at the end of the backing device, and the DRBD device gets the
//! space in front of it. From the end backwards:
//!
//! 1. The superblock: 4 KiB, in the last whole 4 KiB block of the device. If the device's size
//!    is not a multiple of 4 KiB, the odd tail behind that block stays unused.
//! 2. The activity log, right in front of it: `al_stripes * al_stripe_size_kib` KiB (32 KiB by
//!    default).
//! 3. The bitmap, in front of the activity log. It has one bit per 4 KiB of the *whole*
//!    backing device (not only of the usable part: drbdmeta sizes it before it knows the
//!    usable size) for every peer slot. The bit count per peer is rounded up to a multiple of
//!    64 (whole 64-bit words), the bytes of all peers together up to whole 4 KiB blocks.
//!
//! Everything before the bitmap is usable. Because each part is a whole number of 4 KiB blocks
//! and starts on a 4 KiB boundary, the usable size is always a multiple of 4 KiB. The superblock
//! position rounds the device size down to whole blocks while the bitmap rounds it up, so 1-3 KiB
//! past a whole block can cost a bitmap block without moving the superblock: the usable size
//! grows with the device only across whole 4 KiB blocks.
//!
//! This is the layout drbdmeta 9.22 writes for `create-md` (its `dump-md` prints the resulting
//! offsets, which a root test compares with these functions on loop devices).

/// One bitmap bit covers this many KiB.
const KIB_PER_BIT: u64 = 4;
/// The superblock, in KiB.
const SUPERBLOCK_KIB: u64 = 4;

fn div_ceil(a: u64, b: u64) -> u64 {
    a.div_ceil(b)
}

fn align_up(a: u64, to: u64) -> u64 {
    div_ceil(a, to) * to
}

/// Bitmap size in KiB for a backing device of `gross_kib` and `peer_slots` peers.
pub fn bitmap_kib(gross_kib: u64, peer_slots: u32) -> u64 {
    let peers = u64::from(peer_slots.max(1));
    let bits_per_peer = align_up(div_ceil(gross_kib, KIB_PER_BIT), 64);
    let bytes = (bits_per_peer / 8).saturating_mul(peers);
    align_up(bytes, 4096) / 1024
}

/// Activity log size in KiB.
pub fn al_kib(al_stripes: u32, al_stripe_size_kib: u32) -> u64 {
    u64::from(al_stripes) * u64::from(al_stripe_size_kib)
}

/// Size of the whole internal metadata area (bitmap, activity log and superblock) on a backing
/// device of `gross_kib`, in KiB.
///
/// A `peer_slots` of 0 counts as 1, as drbdmeta does.
pub fn md_size_kib(
    gross_kib: u64,
    peer_slots: u32,
    al_stripes: u32,
    al_stripe_size_kib: u32,
) -> u64 {
    bitmap_kib(gross_kib, peer_slots) + al_kib(al_stripes, al_stripe_size_kib) + SUPERBLOCK_KIB
}

/// The usable size DRBD offers on a backing device of `gross_kib` with internal metadata, in
/// KiB; 0 when the device cannot even hold the metadata.
pub fn net_kib(gross_kib: u64, peer_slots: u32, al_stripes: u32, al_stripe_size_kib: u32) -> u64 {
    if gross_kib < SUPERBLOCK_KIB {
        return 0;
    }
    // The superblock's block: the last whole 4 KiB block.
    let superblock_at = (gross_kib / 4 - 1) * 4;
    let below_superblock =
        md_size_kib(gross_kib, peer_slots, al_stripes, al_stripe_size_kib) - SUPERBLOCK_KIB;
    superblock_at.saturating_sub(below_superblock)
}

/// The smallest backing size (KiB) on which DRBD offers at least `net_kib` KiB; always a
/// multiple of 4 KiB. Callers round it up to their storage's granularity, which keeps at least
/// `net_kib` usable as long as that granularity is a multiple of 4 KiB (LVM extents, ZFS
/// volume blocks and our file sizes are): a size 1-3 KiB past a whole block can offer *less*
/// than the block before it (see below).
pub fn gross_kib(net_kib: u64, peer_slots: u32, al_stripes: u32, al_stripe_size_kib: u32) -> u64 {
    if net_kib == 0 {
        return 0;
    }
    // Only multiples of 4 KiB need looking at: 1-3 KiB more than a multiple of 4 do not move
    // the superblock but may grow the bitmap (it covers the whole device, rounded up), so they
    // never offer more. Across multiples of 4 KiB the usable size never shrinks: 4 KiB more
    // device moves the superblock by 4 KiB and grows the bitmap by at most one 4 KiB block
    // (one more bit per peer, at most 32 peers * 64 bits of word rounding, far below 4 KiB).
    // So a binary search over blocks finds the smallest.
    let net = |blocks: u64| {
        self::net_kib(
            blocks.saturating_mul(4),
            peer_slots,
            al_stripes,
            al_stripe_size_kib,
        )
    };
    // The usable part is smaller than the device, so `net_kib` KiB is too small.
    let mut lo = net_kib / 4;
    let mut hi = net_kib
        .saturating_add(md_size_kib(
            net_kib.saturating_mul(2),
            peer_slots,
            al_stripes,
            al_stripe_size_kib,
        ))
        .saturating_add(8)
        .div_ceil(4);
    while net(hi) < net_kib {
        // Only for absurd inputs; keeps the search correct anyway.
        if hi >= u64::MAX / 8 {
            return u64::MAX;
        }
        lo = hi;
        hi = hi.saturating_mul(2);
    }
    // Invariant: net(lo) < net_kib <= net(hi).
    while hi - lo > 1 {
        let mid = lo + (hi - lo) / 2;
        if net(mid) >= net_kib {
            hi = mid;
        } else {
            lo = mid;
        }
    }
    hi * 4
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1024;
    const GIB: u64 = 1024 * 1024;

    #[test]
    fn known_layouts() {
        // 100 MiB, 3 peers: 25600 bits per peer -> 3200 bytes * 3 = 9600 -> 12 KiB bitmap;
        // + 32 KiB AL + 4 KiB superblock = 48 KiB (drbdmeta: md_size_sect 96).
        assert_eq!(bitmap_kib(100 * MIB, 3), 12);
        assert_eq!(md_size_kib(100 * MIB, 3, 1, 32), 48);
        assert_eq!(net_kib(100 * MIB, 3, 1, 32), 100 * MIB - 48);
        // 1 GiB, 1 peer: 262144 bits = 32 KiB bitmap.
        assert_eq!(md_size_kib(GIB, 1, 1, 32), 32 + 32 + 4);
        // 1 TiB, 7 peers: 32 MiB of bitmap per peer.
        assert_eq!(bitmap_kib(1024 * GIB, 7), 7 * 32 * MIB);
        // Two stripes of 64 KiB.
        assert_eq!(md_size_kib(GIB, 1, 2, 64), 32 + 128 + 4);
    }

    #[test]
    fn odd_sizes_lose_the_tail_behind_the_last_whole_block() {
        // 100 MiB + 3 KiB: the superblock stays where it is for 100 MiB.
        assert_eq!(
            net_kib(100 * MIB + 3, 3, 1, 32),
            net_kib(100 * MIB, 3, 1, 32)
        );
        assert_eq!(
            net_kib(100 * MIB + 4, 3, 1, 32),
            net_kib(100 * MIB, 3, 1, 32) + 4
        );
        for g in [4096 + 1, 4096 + 2, 65536 + 3, 12345] {
            assert_eq!(net_kib(g, 7, 1, 32) % 4, 0, "{g}");
        }
    }

    #[test]
    fn zero_peers_count_as_one_and_tiny_devices_give_nothing() {
        assert_eq!(md_size_kib(GIB, 0, 1, 32), md_size_kib(GIB, 1, 1, 32));
        assert_eq!(net_kib(0, 7, 1, 32), 0);
        assert_eq!(net_kib(3, 7, 1, 32), 0);
        assert_eq!(net_kib(40, 1, 1, 32), 0);
        assert_eq!(net_kib(44, 1, 1, 32), 4);
        assert_eq!(gross_kib(0, 7, 1, 32), 0);
    }

    #[test]
    fn net_never_shrinks_across_whole_blocks() {
        for peers in [1, 2, 7, 31] {
            let mut last = 0;
            for g in (0..40 * MIB).step_by(4) {
                let n = net_kib(g, peers, 1, 32);
                assert!(n >= last, "peers {peers} gross {g}");
                last = n;
                // A partial block more never offers more (it can offer less: the bitmap is
                // sized for the whole device, rounded up).
                for extra in 1..4 {
                    assert!(net_kib(g + extra, peers, 1, 32) <= n, "{g}+{extra}");
                }
            }
        }
        // The case that shows it: 7 peers at 18688 KiB + 1 KiB.
        assert_eq!(net_kib(18689, 7, 1, 32), net_kib(18688, 7, 1, 32) - 4);
    }

    #[test]
    fn gross_is_the_smallest_size_that_fits() {
        for peers in [1, 2, 3, 7, 16, 31] {
            for (stripes, size) in [(1, 32), (2, 64), (4, 1024)] {
                for net in [
                    1,
                    4,
                    1000,
                    4 * MIB,
                    100 * MIB,
                    100 * MIB + 1,
                    GIB,
                    10 * GIB + 12,
                    1024 * GIB,
                    64 * 1024 * GIB,
                ] {
                    let g = gross_kib(net, peers, stripes, size);
                    assert!(net_kib(g, peers, stripes, size) >= net, "{net} {peers}");
                    assert!(
                        net_kib(g - 1, peers, stripes, size) < net,
                        "{net} {peers}: {g} is not the smallest"
                    );
                }
            }
        }
    }

    #[test]
    fn gross_of_a_net_size_is_net_plus_metadata() {
        // For sizes well inside one bitmap step the gross is net + metadata of the gross.
        let net = 10 * GIB;
        let g = gross_kib(net, 7, 1, 32);
        assert_eq!(g, net + md_size_kib(g, 7, 1, 32));
    }
}

/// The math against the real drbdmeta 9.22 on loop devices (needs root).
#[cfg(test)]
mod real_drbdmeta {
    use super::*;
    use crate::testutil::{ForgetMinor, Loop};
    use strata_exec::{Cmd, CommandRunner, RealRunner};

    /// The `# key value` comment lines of `drbdmeta dump-md`, e.g. `# bm_offset 104808448`.
    fn dumped(dump: &str, key: &str) -> u64 {
        dump.lines()
            .find_map(|l| l.strip_prefix(&format!("# {key} ")))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or_else(|| panic!("no {key} in\n{dump}"))
    }

    #[test]
    fn drbdmeta_agrees_on_loop_devices() {
        strata_exec::needs!(
            needs::root(),
            needs::loop_devices(),
            needs::tool("drbdmeta", "drbd-utils")
        );
        let _forget = ForgetMinor(1999);
        const MIB: u64 = 1024;
        // (gross KiB, peer slots, AL stripes, AL stripe KiB): odd sizes, bitmap steps, many
        // peers, striped activity logs.
        let cases = [
            (64 * MIB, 1, 1, 32),
            (100 * MIB, 3, 1, 32),
            (100 * MIB + 3, 7, 1, 32),
            (18689, 7, 1, 32),
            (257 * MIB + 12, 2, 2, 64),
            (1024 * MIB, 31, 1, 32),
            (1024 * MIB + 4, 16, 4, 128),
        ];
        for (gross, peers, stripes, stripe_kib) in cases {
            let dev = Loop::new(gross);
            let mut create = Cmd::new("drbdmeta")
                .arg("--force")
                .arg("1999")
                .arg("v09")
                .arg(&dev.dev)
                .arg("internal")
                .arg("create-md");
            if (stripes, stripe_kib) != (1, 32) {
                create = create
                    .arg(format!("--al-stripes={stripes}"))
                    .arg(format!("--al-stripe-size-kB={stripe_kib}"));
            }
            RealRunner
                .run(&create.arg(peers.to_string()))
                .expect("create-md");
            let dump = RealRunner
                .run(
                    &Cmd::new("drbdmeta")
                        .arg("1999")
                        .arg("v09")
                        .arg(&dev.dev)
                        .arg("internal")
                        .arg("dump-md"),
                )
                .expect("dump-md")
                .stdout;
            let case = format!("gross {gross} KiB, {peers} peers, AL {stripes}x{stripe_kib} KiB");
            assert!(
                dump.contains(&format!("max-peers {peers};")),
                "{case}\n{dump}"
            );
            // The superblock: the last whole 4 KiB block.
            assert_eq!(
                dumped(&dump, "md_offset"),
                (gross / 4 - 1) * 4 * 1024,
                "{case}"
            );
            assert_eq!(
                dumped(&dump, "md_size_sect") / 2,
                md_size_kib(gross, peers, stripes, stripe_kib),
                "{case}"
            );
            // The bitmap is the lowest part of the metadata: everything below it is usable.
            assert_eq!(
                dumped(&dump, "bm_offset") / 1024,
                net_kib(gross, peers, stripes, stripe_kib),
                "{case}"
            );
            assert_eq!(
                (dumped(&dump, "md_offset") - dumped(&dump, "al_offset")) / 1024,
                al_kib(stripes, stripe_kib),
                "{case}"
            );
        }
    }

    /// DRBD 8.4's metadata (v08) is laid out as v09 with one peer slot: what the planner
    /// relies on to size the backing volumes of 8.4 resources.
    #[test]
    fn drbd84_metadata_is_v09_with_one_peer() {
        strata_exec::needs!(
            needs::root(),
            needs::loop_devices(),
            needs::tool("drbdmeta", "drbd-utils")
        );
        let _forget = ForgetMinor(1997);
        const MIB: u64 = 1024;
        for gross in [
            64 * MIB,
            100 * MIB + 3,
            18689,
            1024 * MIB + 4,
            10 * 1024 * MIB,
        ] {
            let dev = Loop::new(gross);
            let md = |args: &[&str]| {
                let mut c = Cmd::new("drbdmeta");
                for a in args {
                    c = c.arg(*a);
                }
                RealRunner.run(&c).expect("drbdmeta").stdout
            };
            md(&["--force", "1997", "v08", &dev.dev, "internal", "create-md"]);
            let dump = md(&["1997", "v08", &dev.dev, "internal", "dump-md"]);
            assert!(dump.contains("version \"v08\";"), "{dump}");
            let case = format!("gross {gross} KiB");
            assert_eq!(
                dumped(&dump, "md_size_sect") / 2,
                md_size_kib(gross, 1, 1, 32),
                "{case}"
            );
            assert_eq!(
                dumped(&dump, "bm_offset") / 1024,
                net_kib(gross, 1, 1, 32),
                "{case}"
            );
        }
    }

    #[test]
    fn gross_for_a_net_size_holds_it_on_a_real_device() {
        strata_exec::needs!(
            needs::root(),
            needs::loop_devices(),
            needs::tool("drbdmeta", "drbd-utils")
        );
        let _forget = ForgetMinor(1998);
        let want = 50 * 1024 + 4;
        let gross = gross_kib(want, 7, 1, 32);
        let dev = Loop::new(gross);
        RealRunner
            .run(
                &Cmd::new("drbdmeta")
                    .arg("--force")
                    .arg("1998")
                    .arg("v09")
                    .arg(&dev.dev)
                    .arg("internal")
                    .arg("create-md")
                    .arg("7"),
            )
            .expect("create-md");
        let dump = RealRunner
            .run(
                &Cmd::new("drbdmeta")
                    .arg("1998")
                    .arg("v09")
                    .arg(&dev.dev)
                    .arg("internal")
                    .arg("dump-md"),
            )
            .unwrap()
            .stdout;
        assert_eq!(dumped(&dump, "bm_offset") / 1024, want);
    }
}
