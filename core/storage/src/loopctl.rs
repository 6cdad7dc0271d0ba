//! Loop devices through the kernel's own interface: `/dev/loop-control` hands out a free
//! device, and ioctls attach a file, detach it, and refresh its size. This costs no process,
//! where `losetup` costs one per call; `losetup` stays the fallback (see `loopdev`).
//!
//! The ioctls are the one place of the suite that needs `unsafe`: each call passes an open
//! file descriptor and a plain integer to the loop driver, which reads nothing else.

#![allow(unsafe_code)]

use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::AsRawFd;
use std::path::Path;

use nix::errno::Errno;

const LOOP_SET_FD: u32 = 0x4C00;
const LOOP_CLR_FD: u32 = 0x4C01;
const LOOP_SET_CAPACITY: u32 = 0x4C07;
const LOOP_CTL_GET_FREE: u32 = 0x4C82;

nix::ioctl_write_int_bad!(loop_set_fd, LOOP_SET_FD);
nix::ioctl_none_bad!(loop_clr_fd, LOOP_CLR_FD);
nix::ioctl_none_bad!(loop_set_capacity, LOOP_SET_CAPACITY);
nix::ioctl_none_bad!(loop_ctl_get_free, LOOP_CTL_GET_FREE);

const LOOP_CONTROL: &str = "/dev/loop-control";

fn rw(path: &Path) -> io::Result<File> {
    OpenOptions::new().read(true).write(true).open(path)
}

/// Attaches `file` to a free loop device and returns the device path.
pub fn attach(file: &Path) -> io::Result<String> {
    let backing = rw(file)?;
    let ctl = rw(Path::new(LOOP_CONTROL))?;
    // Another process may take the free device between asking and attaching: ask again.
    for _ in 0..32 {
        // SAFETY: `ctl` is an open descriptor of /dev/loop-control for the whole call; the
        // request takes no argument.
        let n = unsafe { loop_ctl_get_free(ctl.as_raw_fd()) }.map_err(io::Error::from)?;
        let dev = format!("/dev/loop{n}");
        let loop_file = rw(Path::new(&dev))?;
        // SAFETY: both descriptors are open for the whole call; the argument is the backing
        // file's descriptor, which the driver takes its own reference to.
        match unsafe { loop_set_fd(loop_file.as_raw_fd(), backing.as_raw_fd()) } {
            Ok(_) => return Ok(dev),
            Err(Errno::EBUSY) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(io::Error::other("no free loop device could be attached"))
}

/// Detaches the file from loop device `dev`.
pub fn detach(dev: &str) -> io::Result<()> {
    let f = File::open(dev)?;
    // SAFETY: `f` is an open descriptor of the loop device; the request takes no argument.
    unsafe { loop_clr_fd(f.as_raw_fd()) }
        .map(|_| ())
        .map_err(io::Error::from)
}

/// Makes loop device `dev` take the current size of its file.
pub fn refresh_size(dev: &str) -> io::Result<()> {
    let f = File::open(dev)?;
    // SAFETY: `f` is an open descriptor of the loop device; the request takes no argument.
    unsafe { loop_set_capacity(f.as_raw_fd()) }
        .map(|_| ())
        .map_err(io::Error::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attach_grow_and_detach_a_real_file() {
        strata_exec::needs!(needs::root(), needs::loop_devices());
        let dir = tempfile::tempdir().unwrap();
        let img = dir.path().join("x.img");
        File::create(&img).unwrap().set_len(1 << 20).unwrap();
        let dev = attach(&img).unwrap();
        let sysfs = format!(
            "/sys/block/{}/loop/backing_file",
            dev.trim_start_matches("/dev/")
        );
        assert_eq!(
            std::fs::read_to_string(&sysfs).unwrap().trim_end(),
            img.display().to_string()
        );
        let size = || {
            std::fs::read_to_string(format!(
                "/sys/block/{}/size",
                dev.trim_start_matches("/dev/")
            ))
            .unwrap()
            .trim()
            .parse::<u64>()
            .unwrap()
        };
        assert_eq!(size(), 2048);
        OpenOptions::new()
            .write(true)
            .open(&img)
            .unwrap()
            .set_len(2 << 20)
            .unwrap();
        refresh_size(&dev).unwrap();
        assert_eq!(size(), 4096);
        detach(&dev).unwrap();
        assert!(std::fs::read_to_string(&sysfs).is_err(), "detached");
    }
}
