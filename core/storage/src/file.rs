//! FILE and FILE_THIN: volumes are image files in a directory, used through loop devices.
//!
//! FILE preallocates the whole file; FILE_THIN creates it sparse. A volume named `x` is the
//! file `<dir>/x.img`; the suite marks the files it created with `<dir>/.strata/x.owner`,
//! written before the image, so that it never touches an image it did not make.
//!
//! FILE_THIN takes snapshots as reflink copies (`cp --reflink=always`, which shares the
//! blocks), on file systems that can make them (xfs with reflink, btrfs):
//! `<dir>/.strata/snapshots/<volume>/<snapshot>.img`, a directory only the suite writes.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use strata_exec::CommandRunner;
use strata_model::kinds::ProviderKind;
use strata_model::observed::PoolState;

use crate::{loopdev, BackingVolume, Provider, SnapshotVolume, StorageError, OWNER_MARK};

const MARKER_DIR: &str = ".strata";
const SYS_BLOCK: &str = "/sys/block";

pub struct FilePool {
    dir: PathBuf,
    thin: bool,
    runner: Arc<dyn CommandRunner>,
    /// Where attached loop devices are looked up (`/sys/block`).
    sys_block: PathBuf,
    /// Attach and detach through the kernel's loop interface (else only through losetup).
    ioctls: bool,
}

impl FilePool {
    pub fn new(dir: PathBuf, thin: bool, runner: Arc<dyn CommandRunner>) -> FilePool {
        FilePool {
            dir,
            thin,
            runner,
            sys_block: PathBuf::from(SYS_BLOCK),
            ioctls: true,
        }
    }

    /// Uses only `losetup` for loop devices (the scripted tests see every call).
    pub fn with_losetup_only(mut self) -> FilePool {
        self.ioctls = false;
        self
    }

    fn attach(&self, image: &Path) -> Result<String, StorageError> {
        if self.ioctls {
            match crate::loopctl::attach(image) {
                Ok(dev) => return Ok(dev),
                Err(e) => tracing::debug!("loop ioctl attach failed ({e}); using losetup"),
            }
        }
        loopdev::attach(self.runner.as_ref(), &image.display().to_string())
    }

    fn detach(&self, dev: &str) -> Result<(), StorageError> {
        if self.ioctls && crate::loopctl::detach(dev).is_ok() {
            return Ok(());
        }
        loopdev::detach(self.runner.as_ref(), dev)
    }

    fn refresh(&self, dev: &str) -> Result<(), StorageError> {
        if self.ioctls && crate::loopctl::refresh_size(dev).is_ok() {
            return Ok(());
        }
        loopdev::refresh_size(self.runner.as_ref(), dev)
    }

    /// Looks attached loop devices up below `sys_block` instead of `/sys/block` (a path that
    /// does not exist makes the pool ask `losetup`).
    pub fn with_sys_block(mut self, sys_block: PathBuf) -> FilePool {
        self.sys_block = sys_block;
        self
    }

    /// Back file -> device of the attached loop devices that have a size: all a volume of
    /// ours can be attached to, unless its file was emptied behind our back.
    fn loops(&self) -> Result<std::collections::BTreeMap<String, String>, StorageError> {
        let quick = self.sys_block == std::path::Path::new(SYS_BLOCK);
        loopdev::list(self.runner.as_ref(), &self.sys_block, quick)
    }

    fn image(&self, name: &str) -> PathBuf {
        self.dir.join(format!("{name}.img"))
    }

    fn marker(&self, name: &str) -> PathBuf {
        self.dir.join(MARKER_DIR).join(format!("{name}.owner"))
    }

    fn snapshot_file(&self, volume: &str, snapshot: &str) -> PathBuf {
        self.dir
            .join(MARKER_DIR)
            .join("snapshots")
            .join(volume)
            .join(format!("{snapshot}.img"))
    }

    /// The image of volume `name`, which must be ours.
    fn owned_image(&self, name: &str) -> Result<PathBuf, StorageError> {
        let image = self.image(name);
        if !self.marker(name).exists() {
            return Err(StorageError::NotOwned(image.display().to_string()));
        }
        Ok(image)
    }

    /// The file of snapshot `snapshot` of `volume`, which must exist.
    fn existing_snapshot(&self, volume: &str, snapshot: &str) -> Result<PathBuf, StorageError> {
        let file = self.snapshot_file(volume, snapshot);
        if !file.exists() {
            return Err(StorageError::SnapshotNotFound {
                volume: volume.into(),
                snapshot: snapshot.into(),
                place: self.dir.display().to_string(),
            });
        }
        Ok(file)
    }

    fn thin_only(&self) -> Result<(), StorageError> {
        if self.thin {
            Ok(())
        } else {
            Err(crate::no_snapshots(ProviderKind::File))
        }
    }

    /// A reflink copy of `from` at `to` (through a temporary name, so that a copy that fails
    /// half-way leaves nothing under the final name).
    fn reflink(&self, from: &Path, to: &Path) -> Result<(), StorageError> {
        let tmp = to.with_extension("img.tmp");
        let done = self.runner.run(
            &strata_exec::Cmd::new("cp")
                .arg("--reflink=always")
                .arg(from.display().to_string())
                .arg(tmp.display().to_string()),
        );
        if let Err(e) = done {
            let _ = fs::remove_file(&tmp);
            let text = e.to_string();
            if text.contains("Operation not supported") || text.contains("Invalid argument") {
                return Err(StorageError::Unsupported(format!(
                    "the file system of {} cannot make reflink copies; FILE_THIN snapshots need xfs (with reflink) or btrfs",
                    self.dir.display()
                )));
            }
            return Err(e.into());
        }
        fs::rename(&tmp, to).map_err(|e| StorageError::io(to, e))
    }

    fn check_name(name: &str) -> Result<(), StorageError> {
        if name.is_empty() || name.starts_with('.') || name.contains('/') || name.contains('\0') {
            return Err(StorageError::InvalidName(format!(
                "'{name}' cannot name a volume file"
            )));
        }
        Ok(())
    }

    fn write_marker(&self, name: &str) -> Result<(), StorageError> {
        let path = self.marker(name);
        let dir = self.dir.join(MARKER_DIR);
        fs::create_dir_all(&dir).map_err(|e| StorageError::io(&dir, e))?;
        let tmp = dir.join(format!(".{name}.owner.tmp"));
        let body = serde_json::json!({ "owner": OWNER_MARK, "volume": name }).to_string();
        let mut f = File::create(&tmp).map_err(|e| StorageError::io(&tmp, e))?;
        f.write_all(body.as_bytes())
            .and_then(|_| f.sync_all())
            .map_err(|e| StorageError::io(&tmp, e))?;
        fs::rename(&tmp, &path).map_err(|e| StorageError::io(&path, e))?;
        Ok(())
    }

    fn volume(
        &self,
        name: &str,
        device: Option<String>,
    ) -> Result<Option<BackingVolume>, StorageError> {
        let image = self.image(name);
        match fs::metadata(&image) {
            Ok(meta) => {
                let size_kib = meta.len() / 1024;
                let allocated_kib = if self.thin {
                    meta.blocks() * 512 / 1024
                } else {
                    size_kib
                };
                Ok(Some(BackingVolume {
                    name: name.to_string(),
                    path: image.display().to_string(),
                    device,
                    size_kib,
                    allocated_kib,
                }))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(StorageError::io(&image, e)),
        }
    }

    /// The loop device of one image, looking at every loop device.
    fn device_of(&self, name: &str) -> Result<Option<String>, StorageError> {
        let image = self.image(name).display().to_string();
        Ok(loopdev::list(self.runner.as_ref(), &self.sys_block, false)?.remove(&image))
    }

    fn set_size(&self, image: &Path, bytes: u64, create: bool) -> Result<(), StorageError> {
        let f = OpenOptions::new()
            .write(true)
            .create_new(create)
            .open(image)
            .map_err(|e| StorageError::io(image, e))?;
        f.set_len(bytes).map_err(|e| StorageError::io(image, e))?;
        if !self.thin {
            nix::fcntl::posix_fallocate(&f, 0, bytes as i64).map_err(|e| {
                let failed = format!("cannot preallocate {bytes} bytes: {e}");
                StorageError::io(
                    image,
                    std::io::Error::new(std::io::Error::from(e).kind(), failed),
                )
            })?;
            // The reservation is the point of a thick file: make it survive a power cut.
            f.sync_all().map_err(|e| StorageError::io(image, e))?;
        }
        // A sparse file needs no flush of its own: until somebody writes it reads as zeros,
        // and every flush the user sends through the loop device flushes the file too.
        Ok(())
    }
}

impl Provider for FilePool {
    fn kind(&self) -> ProviderKind {
        if self.thin {
            ProviderKind::FileThin
        } else {
            ProviderKind::File
        }
    }

    fn check(&self) -> Result<(), StorageError> {
        fs::create_dir_all(&self.dir).map_err(|e| StorageError::io(&self.dir, e))?;
        let meta = fs::metadata(&self.dir).map_err(|e| StorageError::io(&self.dir, e))?;
        if !meta.is_dir() {
            return Err(StorageError::PoolConfig(format!(
                "{} is not a directory",
                self.dir.display()
            )));
        }
        let marker_dir = self.dir.join(MARKER_DIR);
        fs::create_dir_all(&marker_dir).map_err(|e| StorageError::io(&marker_dir, e))?;
        Ok(())
    }

    fn state(&self) -> Result<PoolState, StorageError> {
        let st = nix::sys::statvfs::statvfs(&self.dir).map_err(|e| {
            StorageError::io(
                &self.dir,
                std::io::Error::new(std::io::Error::from(e).kind(), e),
            )
        })?;
        let frag = st.fragment_size() as u64;
        Ok(PoolState {
            free_capacity_kib: st.blocks_available() as u64 * frag / 1024,
            total_capacity_kib: st.blocks() as u64 * frag / 1024,
            supports_snapshots: false,
            errors: Vec::new(),
        })
    }

    fn list(&self) -> Result<Vec<BackingVolume>, StorageError> {
        let marker_dir = self.dir.join(MARKER_DIR);
        let entries = match fs::read_dir(&marker_dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(StorageError::io(&marker_dir, e)),
        };
        let mut names: Vec<String> = entries
            .filter_map(|e| e.ok())
            .filter_map(|e| {
                e.file_name()
                    .to_str()
                    .and_then(|n| n.strip_suffix(".owner"))
                    .filter(|n| !n.starts_with('.'))
                    .map(str::to_string)
            })
            .collect();
        names.sort();
        if names.is_empty() {
            return Ok(Vec::new());
        }
        let mut loops = self.loops()?;
        let mut out = Vec::new();
        for name in names {
            let device = loops.remove(&self.image(&name).display().to_string());
            match self.volume(&name, device)? {
                Some(v) => out.push(v),
                // Marked but never completed: report it so that it is finished or removed.
                None => out.push(BackingVolume {
                    name: name.clone(),
                    path: self.image(&name).display().to_string(),
                    device: None,
                    size_kib: 0,
                    allocated_kib: 0,
                }),
            }
        }
        Ok(out)
    }

    fn ensure(
        &self,
        name: &str,
        size_kib: u64,
        current: Option<&BackingVolume>,
    ) -> Result<BackingVolume, StorageError> {
        Self::check_name(name)?;
        let image = self.image(name);
        let marked = self.marker(name).exists();
        let exists = image.exists();
        if exists && !marked {
            return Err(StorageError::NotOwned(image.display().to_string()));
        }
        let bytes = size_kib * 1024;
        let mut device = current.and_then(|c| c.device.clone());
        if !exists {
            self.write_marker(name)?;
            self.set_size(&image, bytes, true)?;
            device = None;
        } else {
            let len = fs::metadata(&image)
                .map_err(|e| StorageError::io(&image, e))?
                .len();
            if len < bytes {
                self.set_size(&image, bytes, false)?;
                if let Some(dev) = &device {
                    self.refresh(dev)?;
                }
            }
        }
        if device.is_none() && current.is_none() && exists {
            device = self.device_of(name)?;
        }
        let device = match device {
            Some(d) => d,
            None => self.attach(&image)?,
        };
        self.volume(name, Some(device))?.ok_or_else(|| {
            StorageError::io_other(
                &image,
                "the image vanished while it was being set up".into(),
            )
        })
    }

    fn delete(&self, name: &str, current: Option<&BackingVolume>) -> Result<(), StorageError> {
        Self::check_name(name)?;
        let image = self.image(name);
        let marker = self.marker(name);
        if !marker.exists() {
            if image.exists() {
                return Err(StorageError::NotOwned(image.display().to_string()));
            }
            return Ok(());
        }
        let device = match current {
            Some(c) => c.device.clone(),
            None => self.device_of(name)?,
        };
        if let Some(dev) = device {
            self.detach(&dev)?;
        }
        match fs::remove_file(&image) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(StorageError::io(&image, e)),
        }
        fs::remove_file(&marker).map_err(|e| StorageError::io(&marker, e))?;
        Ok(())
    }

    fn shrink(
        &self,
        name: &str,
        size_kib: u64,
        current: &BackingVolume,
    ) -> Result<BackingVolume, StorageError> {
        Self::check_name(name)?;
        let image = self.owned_image(name)?;
        let f = OpenOptions::new()
            .write(true)
            .open(&image)
            .map_err(|e| StorageError::io(&image, e))?;
        f.set_len(size_kib * 1024)
            .and_then(|_| f.sync_all())
            .map_err(|e| StorageError::io(&image, e))?;
        if let Some(dev) = &current.device {
            self.refresh(dev)?;
        }
        tracing::info!(image = %image.display(), size_kib, "volume shrunk");
        self.volume(name, current.device.clone())?
            .ok_or_else(|| StorageError::io(&image, std::io::ErrorKind::NotFound.into()))
    }

    fn rename(
        &self,
        from: &str,
        to: &str,
        current: &BackingVolume,
    ) -> Result<BackingVolume, StorageError> {
        Self::check_name(from)?;
        Self::check_name(to)?;
        let (old, new) = (self.owned_image(from)?, self.image(to));
        if new.exists() || self.marker(to).exists() {
            return Err(StorageError::AlreadyExists(format!(
                "'{}' exists already",
                new.display()
            )));
        }
        // A loop device keeps the name of its file: it is attached again under the new one.
        if let Some(dev) = &current.device {
            self.detach(dev)?;
        }
        self.write_marker(to)?;
        fs::rename(&old, &new).map_err(|e| StorageError::io(&old, e))?;
        let marker = self.marker(from);
        fs::remove_file(&marker).map_err(|e| StorageError::io(&marker, e))?;
        self.volume(to, None)?
            .ok_or_else(|| StorageError::io(&new, std::io::ErrorKind::NotFound.into()))
    }

    fn adopt(&self, name: &str, size_kib: u64) -> Result<Option<BackingVolume>, StorageError> {
        Self::check_name(name)?;
        if self.volume(name, None)?.is_none() {
            return Ok(None);
        }
        // The administrator's image may still be attached: that loop device is used.
        let Some(v) = self.volume(name, self.device_of(name)?)? else {
            return Ok(None);
        };
        if !self.marker(name).exists() {
            crate::check_adoptable_size(&v.path, v.size_kib, size_kib)?;
            self.write_marker(name)?;
            tracing::info!(image = %v.path, "volume adopted");
        }
        Ok(Some(v))
    }

    fn snapshots(&self) -> Result<Vec<SnapshotVolume>, StorageError> {
        let root = self.dir.join(MARKER_DIR).join("snapshots");
        let volumes = match fs::read_dir(&root) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(StorageError::io(&root, e)),
        };
        let mut out = Vec::new();
        for v in volumes.filter_map(|e| e.ok()) {
            let Some(volume) = v.file_name().to_str().map(str::to_string) else {
                continue;
            };
            let Ok(files) = fs::read_dir(v.path()) else {
                continue;
            };
            for f in files.filter_map(|e| e.ok()) {
                let name = f.file_name();
                let Some(snapshot) = name.to_str().and_then(|n| n.strip_suffix(".img")) else {
                    continue;
                };
                let size_kib = f.metadata().map(|m| m.len() / 1024).unwrap_or(0);
                out.push(SnapshotVolume {
                    volume: volume.clone(),
                    snapshot: snapshot.to_string(),
                    path: f.path().display().to_string(),
                    size_kib,
                });
            }
        }
        out.sort_by(|a, b| (&a.volume, &a.snapshot).cmp(&(&b.volume, &b.snapshot)));
        Ok(out)
    }

    fn snapshot_create(
        &self,
        volume: &str,
        snapshot: &str,
    ) -> Result<SnapshotVolume, StorageError> {
        self.thin_only()?;
        Self::check_name(volume)?;
        Self::check_name(snapshot)?;
        let to = self.snapshot_file(volume, snapshot);
        if !to.exists() {
            let image = self.image(volume);
            if !self.marker(volume).exists() || !image.exists() {
                return Err(StorageError::NotFound(format!(
                    "volume '{volume}' not found in {}: there is nothing to take snapshot '{snapshot}' of",
                    self.dir.display()
                )));
            }
            let parent = to.parent().expect("a snapshot directory");
            fs::create_dir_all(parent).map_err(|e| StorageError::io(parent, e))?;
            self.reflink(&image, &to)?;
        }
        let size_kib = fs::metadata(&to)
            .map_err(|e| StorageError::io(&to, e))?
            .len()
            / 1024;
        Ok(SnapshotVolume {
            volume: volume.to_string(),
            snapshot: snapshot.to_string(),
            path: to.display().to_string(),
            size_kib,
        })
    }

    fn snapshot_delete(&self, volume: &str, snapshot: &str) -> Result<(), StorageError> {
        self.thin_only()?;
        Self::check_name(volume)?;
        Self::check_name(snapshot)?;
        let file = self.snapshot_file(volume, snapshot);
        match fs::remove_file(&file) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(StorageError::io(&file, e)),
        }
        // The volume's snapshot directory goes with its last snapshot.
        if let Some(parent) = file.parent() {
            let _ = fs::remove_dir(parent);
        }
        Ok(())
    }

    fn snapshot_restore(
        &self,
        volume: &str,
        snapshot: &str,
        target: &str,
    ) -> Result<BackingVolume, StorageError> {
        self.thin_only()?;
        Self::check_name(volume)?;
        Self::check_name(snapshot)?;
        Self::check_name(target)?;
        let from = self.existing_snapshot(volume, snapshot)?;
        let image = self.image(target);
        if image.exists() || self.marker(target).exists() {
            return Err(StorageError::AlreadyExists(format!(
                "cannot restore into '{}': it exists already",
                image.display()
            )));
        }
        self.write_marker(target)?;
        if let Err(e) = self.reflink(&from, &image) {
            let _ = fs::remove_file(self.marker(target));
            return Err(e);
        }
        let device = self.attach(&image)?;
        self.volume(target, Some(device))?
            .ok_or_else(|| StorageError::io_other(&image, "the restored image vanished".into()))
    }

    fn snapshot_rollback(&self, volume: &str, snapshot: &str) -> Result<(), StorageError> {
        self.thin_only()?;
        Self::check_name(volume)?;
        Self::check_name(snapshot)?;
        let from = self.existing_snapshot(volume, snapshot)?;
        let image = self.owned_image(volume)?;
        // The loop device holds the old file: detach it, then put the copy in its place.
        if let Some(dev) = self.device_of(volume)? {
            if crate::device_in_use(&dev) {
                return Err(StorageError::InUse {
                    device: dev,
                    fix: "stop using it first",
                });
            }
            self.detach(&dev)?;
        }
        self.reflink(&from, &image)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use strata_exec::{Output, ScriptedRunner};

    fn pool(dir: &Path, thin: bool, runner: Arc<ScriptedRunner>) -> FilePool {
        // No sysfs here: the scripted losetup answers.
        FilePool::new(dir.to_path_buf(), thin, runner)
            .with_sys_block(dir.join("no-sysfs"))
            .with_losetup_only()
    }

    #[test]
    fn create_grow_delete_with_scripted_losetup() {
        let dir = tempfile::tempdir().unwrap();
        let img = dir.path().join("r1_00000.img").display().to_string();
        let runner = Arc::new(ScriptedRunner::new());
        runner
            .expect(
                &["losetup", "--find", "--show", &img],
                Output::ok("/dev/loop7\n"),
            )
            .expect(&["losetup", "--set-capacity", "/dev/loop7"], Output::ok(""))
            .expect(
                &[
                    "losetup",
                    "--list",
                    "--noheadings",
                    "--raw",
                    "--output",
                    "NAME,BACK-FILE",
                ],
                Output::ok(format!("/dev/loop7 {img}\n")),
            )
            .expect(&["losetup", "--detach", "/dev/loop7"], Output::ok(""));
        let p = pool(dir.path(), true, runner.clone());
        p.check().unwrap();
        let v = p.ensure("r1_00000", 4096, None).unwrap();
        assert_eq!(v.device.as_deref(), Some("/dev/loop7"));
        assert_eq!(v.size_kib, 4096);
        assert!(v.allocated_kib < 4096, "thin files start sparse");
        // Growing keeps the device and refreshes its size.
        let v = p.ensure("r1_00000", 8192, Some(&v)).unwrap();
        assert_eq!(v.size_kib, 8192);
        // A smaller request never shrinks.
        let v = p.ensure("r1_00000", 1024, Some(&v)).unwrap();
        assert_eq!(v.size_kib, 8192);
        let listed = p.list().unwrap();
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].device.as_deref(), Some("/dev/loop7"));
        p.delete("r1_00000", Some(&listed[0])).unwrap();
        assert!(!dir.path().join("r1_00000.img").exists());
        assert!(runner.remaining().is_empty());
    }

    #[test]
    fn foreign_files_are_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("theirs_00000.img"), b"precious").unwrap();
        let runner = Arc::new(ScriptedRunner::new());
        let p = pool(dir.path(), false, runner.clone());
        assert!(p.list().unwrap().is_empty());
        assert!(matches!(
            p.ensure("theirs_00000", 4, None),
            Err(StorageError::NotOwned(_))
        ));
        assert!(matches!(
            p.delete("theirs_00000", None),
            Err(StorageError::NotOwned(_))
        ));
        assert_eq!(
            fs::read(dir.path().join("theirs_00000.img")).unwrap(),
            b"precious"
        );
        assert!(runner.calls().is_empty());
    }

    /// An image the administrator made is taken over as it is (content and size) when a
    /// volume definition names it; one too small is left unmarked.
    #[test]
    fn an_administrators_image_is_adopted_as_it_is() {
        let dir = tempfile::tempdir().unwrap();
        let image = dir.path().join("legacy.img");
        let list = [
            "losetup",
            "--list",
            "--noheadings",
            "--raw",
            "--output",
            "NAME,BACK-FILE",
        ];
        let attached = Output::ok(format!("/dev/loop3 {}\n", image.display()));
        let runner = Arc::new(ScriptedRunner::new());
        runner
            .expect(&list, attached.clone())
            .expect(&list, attached.clone())
            .expect(&list, attached);
        let p = pool(dir.path(), true, runner.clone());
        p.check().unwrap();
        fs::write(&image, vec![7u8; 8192]).unwrap();
        assert_eq!(p.adopt("absent", 4).unwrap(), None);
        let err = p.adopt("legacy", 16).unwrap_err().to_string();
        assert!(
            err.contains("exists with 8 KiB, less than the 16 KiB"),
            "{err}"
        );
        assert!(p.list().unwrap().is_empty(), "not marked");
        let v = p.adopt("legacy", 8).unwrap().unwrap();
        assert_eq!(v.size_kib, 8);
        assert_eq!(
            v.device.as_deref(),
            Some("/dev/loop3"),
            "its loop device is used"
        );
        assert_eq!(fs::read(&image).unwrap(), vec![7u8; 8192], "content kept");
        assert_eq!(p.list().unwrap().len(), 1);
    }

    #[test]
    fn thick_files_are_preallocated() {
        let dir = tempfile::tempdir().unwrap();
        let img = dir.path().join("t_00000.img").display().to_string();
        let runner = Arc::new(ScriptedRunner::new());
        runner.expect(
            &["losetup", "--find", "--show", &img],
            Output::ok("/dev/loop3\n"),
        );
        let p = pool(dir.path(), false, runner);
        let v = p.ensure("t_00000", 2048, None).unwrap();
        let meta = fs::metadata(&img).unwrap();
        assert!(meta.blocks() * 512 >= 2048 * 1024, "all blocks allocated");
        assert_eq!(v.allocated_kib, 2048);
    }

    #[test]
    fn bad_names_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let p = pool(dir.path(), true, Arc::new(ScriptedRunner::new()));
        assert!(p.ensure("../escape", 4, None).is_err());
        assert!(p.ensure(".hidden", 4, None).is_err());
    }

    #[test]
    fn capacity_comes_from_the_file_system() {
        let dir = tempfile::tempdir().unwrap();
        let p = pool(dir.path(), true, Arc::new(ScriptedRunner::new()));
        let s = p.state().unwrap();
        assert!(s.total_capacity_kib > 0);
        assert!(s.free_capacity_kib <= s.total_capacity_kib);
    }
}
