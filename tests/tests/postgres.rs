//! The controller's state in PostgreSQL (Debian's postgresql, a server of the test's own):
//! a cluster made, kept across a controller restart and a crash, moved to the embedded
//! database with `export-db` / `import-db` and back, and what may not be imported refused.

use strata_tests::pg::{self, PgServer};
use strata_tests::{LoopFs, TestCluster, CONTROLLER_DB};

#[test]
fn controller_keeps_the_cluster_in_postgresql_and_moves_it() {
    strata_tests::needs_cluster!(pg::available(), needs::tool("mkfs.xfs", "xfsprogs"));
    let mut c = TestCluster::start_on_postgres(0);
    // FILE_THIN pools on xfs, for snapshots.
    let xfs = LoopFs::xfs(c.dir.path(), "xfs");
    c.add_satellites_on(&xfs, &["node1", "node2"]);
    c.register_all();
    c.create_group_on("pgrg", 1, &[]);
    c.spawn("pgrg", "pgres1", 8192);
    c.spawn("pgrg", "pgres2", 4096);
    c.linstor_ok(&["snapshot", "create", "pgres1", "snap1"]);
    // Both satellites have reported their pools.
    let reported = c.wait_until(std::time::Duration::from_secs(30), || {
        c.linstor_ok(&["storage-pool", "list"])
            .matches(" MiB")
            .count()
            >= 4
    });
    assert!(reported, "{}", c.linstor_ok(&["storage-pool", "list"]));
    let made = c.listing();
    assert!(
        made[3].contains("pgres1") && made[5].contains("snap1"),
        "{made:?}"
    );
    let server: &PgServer = c.pg.as_ref().unwrap();
    // The objects are rows of PostgreSQL's database.
    let (ok, out) = server.psql("linstor", "SELECT count(*) FROM objects WHERE class = 'rd'");
    assert!(ok, "{out}");
    assert_eq!(out.trim(), "2");
    // The same schema version as the embedded database's (version 2), reached the same way.
    let (ok, out) = server.psql(
        "linstor",
        "SELECT value FROM meta WHERE key = 'schema_version'",
    );
    assert_eq!((ok, out.trim()), (true, "2"));
    let (ok, out) = server.psql("linstor", "SELECT version FROM schema_history");
    assert_eq!((ok, out.trim()), (true, "2"));

    // A crash and a restart of the controller: everything is there.
    c.kill_controller();
    c.start_controller();
    c.same_listing(&made, "after a crash");

    // To the embedded database and back, through a file.
    let pg_url = std::fs::read_to_string(c.dir.path().join(CONTROLLER_DB)).unwrap();
    let export = c.dir.path().join("export.json");
    let (ok, out) = c.controller_command(&pg_url, &["export-db", export.to_str().unwrap()]);
    assert!(ok && out.contains("exported"), "{out}");
    c.kill_controller();
    // The embedded database in the controller's data directory, where its CA is: the
    // satellites know the cluster by it.
    let sqlite = c.dir.path().join("controller/linstor.sqlite");
    let sqlite_url = format!("sqlite:{}", sqlite.display());
    let (ok, out) = c.controller_command(&sqlite_url, &["import-db", export.to_str().unwrap()]);
    assert!(ok && out.contains("imported"), "{out}");
    // A database that holds a cluster already is not overwritten.
    let (ok, out) = c.controller_command(&sqlite_url, &["import-db", export.to_str().unwrap()]);
    assert!(!ok && out.contains("holds a cluster already"), "{out}");
    std::fs::write(c.dir.path().join(CONTROLLER_DB), &sqlite_url).unwrap();
    c.start_controller();
    c.same_listing(&made, "the cluster on the embedded database");
    // A change there, then back into a new PostgreSQL database.
    c.linstor_ok(&["resource-definition", "delete", "pgres2"]);
    let changed = c.listing();
    let back = c.dir.path().join("back.json");
    let (ok, out) = c.controller_command(&sqlite_url, &["export-db", back.to_str().unwrap()]);
    assert!(ok, "{out}");
    c.kill_controller();
    let url2 = c.pg.as_ref().unwrap().create_db("linstor2");
    let (ok, out) = c.controller_command(&url2, &["import-db", back.to_str().unwrap()]);
    assert!(ok, "{out}");
    std::fs::write(c.dir.path().join(CONTROLLER_DB), &url2).unwrap();
    c.start_controller();
    c.same_listing(&changed, "the cluster back on PostgreSQL");

    // Files that are not exports, and databases that cannot be reached.
    let bogus = c.dir.path().join("bogus.json");
    std::fs::write(&bogus, "{\"rows\": 3}").unwrap();
    let url3 = c.pg.as_ref().unwrap().create_db("linstor3");
    let (ok, out) = c.controller_command(&url3, &["import-db", bogus.to_str().unwrap()]);
    assert!(!ok && out.contains("not a file export-db wrote"), "{out}");
    let (ok, out) = c.controller_command(
        "postgresql://strata@127.0.0.1:9/none",
        &["export-db", back.to_str().unwrap()],
    );
    assert!(!ok && out.contains("cannot open database"), "{out}");
}
