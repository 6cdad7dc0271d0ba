"""The driver driven by Cinder's own VolumeManager (what cinder-volume runs), with Cinder's
test database (SQLite) and objects, against a real cluster that the calling test started:

    STRATA_CINDER_HELPER  the strata-cinder program
    STRATA_CONTROLLER     host:port of the controller
    STRATA_LINSTOR        the linstor client (to look at the cluster)
    STRATA_STORAGE_HOST   the node the cinder-volume host is (its pools hold the volumes)
    STRATA_COMPUTE_HOST   a node standing for a compute host

Groups the cluster has: CinderGrp (one replica, on the storage host) and CinderBoth (a
replica on each host, so that a compute host can use one without DRBD).
"""

import json
import os
import subprocess
import time
import uuid

# Cinder's unit-test package first: it registers Cinder's objects, as its own tests have it.
import cinder.tests.unit  # noqa: F401
from cinder import context
from cinder import exception
from cinder import objects
from cinder.objects import fields
from cinder.tests.unit import test
from cinder.tests.unit.image import fake as fake_image
import cinder.backup.drivers.posix  # noqa: F401  (registers its options)
import cinder.privsep
import cinder.utils
import os_brick.privileged
import fixtures
from cinder.tests.unit import utils as tests_utils
from oslo_utils import importutils

# The driver's options are registered when it is imported (as cinder-volume imports it).
import strata_cinder.driver  # noqa: F401

HELPER = os.environ['STRATA_CINDER_HELPER']
CONTROLLER = os.environ['STRATA_CONTROLLER']
LINSTOR = os.environ['STRATA_LINSTOR']
STORAGE = os.environ['STRATA_STORAGE_HOST']
COMPUTE = os.environ['STRATA_COMPUTE_HOST']
GIB = 1024 * 1024


def linstor(*args):
    done = subprocess.run([LINSTOR, '--controllers', CONTROLLER] + list(args),
                          capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise AssertionError('linstor %s: %s%s' % (' '.join(args), done.stdout, done.stderr))
    return done.stdout


def linstor_json(*args):
    return json.loads(linstor('-m', *args))


def definition(name):
    """The resource definition `name` (None when there is none)."""
    rds = linstor_json('resource-definition', 'list', '-r', name)
    for rd in (rds[0] if rds else []):
        if rd['name'].lower() == name.lower():
            return rd
    return None


def size_kib(name):
    vds = linstor_json('volume-definition', 'list', '-r', name)
    return vds[0][0]['volume_definitions'][0]['size_kib']


def resources(name):
    rl = linstor_json('resource', 'list', '-r', name)
    return rl[0] if rl else []


def snapshots(name):
    sl = linstor_json('snapshot', 'list', '-r', name)
    return sorted(s['name'] for s in (sl[0] if sl else []))


def wait(what, check, limit=30):
    end = time.time() + limit
    while time.time() < end:
        if check():
            return
        time.sleep(0.2)
    raise AssertionError('timed out waiting for %s' % what)


def refreshed(obj):
    obj.refresh()
    return obj


def write(path, seed, size=1 << 20):
    data = (seed.encode() * (size // len(seed) + 1))[:size]
    with open(path, 'r+b', buffering=0) as f:
        f.write(data)
        os.fsync(f.fileno())
    return data


def read(path, size=1 << 20):
    with open(path, 'rb', buffering=0) as f:
        return f.read(size)


class ImageStore(fake_image._FakeImageService):
    """Cinder's Glance stand-in, keeping the data of an upload too."""

    def __init__(self):
        super().__init__()
        self.uploaded = {}
        # Cinder's own cache of downloaded images (the stand-in has a mock there).
        self.temp_images = None

    def update(self, context, image_id, metadata, data=None, **kwargs):
        if data is not None:
            self.uploaded[image_id] = data.read()
        return super().update(context, image_id, metadata, **kwargs)


class StrataVolumeManagerTest(test.TestCase):

    def setUp(self):
        super().setUp()
        # The cinder-volume service of this backend runs on the storage host.
        self.flags(host=STORAGE + '@strata')
        self.flags(volume_driver='strata_cinder.driver.StrataDriver',
                   volume_backend_name='strata',
                   strata_controllers=[CONTROLLER],
                   strata_helper=HELPER,
                   strata_resource_group='CinderGrp',
                   strata_pools=['CinderBoth'],
                   strata_allow_insecure_auth=True,
                   strata_timeout=30,
                   group='backend_defaults')
        self.manager = importutils.import_object('cinder.volume.manager.VolumeManager')
        self.driver = self.manager.driver
        self.driver.set_initialized()
        self.manager.stats = {'allocated_capacity_gb': 0, 'pools': {}}
        self.ctx = context.get_admin_context()
        self.ctx.user_id = str(uuid.uuid4())
        self.ctx.project_id = str(uuid.uuid4())
        self.type_one = tests_utils.create_volume_type(
            self.ctx, name='one', extra_specs={'volume_backend_name': 'strata'})
        self.type_both = tests_utils.create_volume_type(
            self.ctx, name='both',
            extra_specs={'strata:resource_group': 'CinderBoth'})

    def volume(self, size=1, vtype=None, status='creating', **kwargs):
        vtype = vtype or self.type_one
        return tests_utils.create_volume(
            self.ctx, host='%s@strata#CinderGrp' % STORAGE, size=size, status=status,
            volume_type_id=vtype.id, display_name=kwargs.pop('display_name', 'vol'),
            **kwargs)

    def create(self, **kwargs):
        vol = self.volume(**kwargs)
        self.manager.create_volume(self.ctx, vol)
        vol.refresh()
        self.assertEqual('available', vol.status, vol.status)
        return vol

    def device(self, vol, host=None):
        conn = self.driver.initialize_connection(vol, {'host': host or STORAGE})
        self.assertEqual('local', conn['driver_volume_type'])
        return conn['data']['device_path']

    def delete(self, vol):
        vol.refresh()
        vol.status = 'deleting'
        vol.save()
        self.manager.delete_volume(self.ctx, vol)

    # ---------------------------------------------------------------------------------

    def test_the_driver_meets_cinders_interfaces(self):
        # What Cinder's own compliance test checks of its in-tree drivers, and more.
        from cinder.interface import volume_driver
        from cinder.interface import volume_manageable_driver
        from cinder.interface import volume_snapshot_revert
        cls = strata_cinder.driver.StrataDriver
        for iface in (volume_driver.VolumeDriverCore,
                      volume_snapshot_revert.VolumeSnapshotRevertDriver,
                      volume_manageable_driver.VolumeManagementDriver):
            self.assertTrue(issubclass(cls, iface), iface.__name__)
        self.assertTrue(hasattr(cls, 'CI_WIKI_NAME'))
        names = [o.name for o in cls.get_driver_options()]
        self.assertIn('strata_controllers', names)

    def test_stats_report_each_group_as_a_pool(self):
        stats = self.driver.get_volume_stats(refresh=True)
        self.assertEqual('strata', stats['volume_backend_name'])
        self.assertEqual('DRBD', stats['storage_protocol'])
        pools = {p['pool_name']: p for p in stats['pools']}
        self.assertEqual({'CinderGrp', 'CinderBoth'}, set(pools))
        for p in pools.values():
            self.assertGreater(p['total_capacity_gb'], 0)
            self.assertGreater(p['free_capacity_gb'], 0)
            self.assertLessEqual(p['free_capacity_gb'], p['total_capacity_gb'])
            self.assertTrue(p['multiattach'])
            self.assertTrue(p['thin_provisioning_support'])
        # CinderBoth counts the pools of both hosts.
        self.assertGreater(pools['CinderBoth']['total_capacity_gb'],
                           pools['CinderGrp']['total_capacity_gb'])

    def test_a_volume_lives_its_life_through_the_manager(self):
        vol = self.create(display_name='db')
        name = 'CV_' + vol.id
        self.assertEqual(name, vol.provider_location)
        rd = definition(name)
        self.assertIsNotNone(rd)
        self.assertEqual(vol.id, rd['props']['Aux/cinder/volume-id'])
        self.assertEqual('db', rd['props']['Aux/cinder/volume-name'])
        self.assertEqual(GIB, size_kib(name))
        dev = self.device(vol)
        first = write(dev, 'first')

        # A snapshot, then other data, then back to the snapshot.
        snap = tests_utils.create_snapshot(self.ctx, vol.id)
        self.manager.create_snapshot(self.ctx, snap)
        snap.refresh()
        self.assertEqual(fields.SnapshotStatus.AVAILABLE, snap.status)
        self.assertEqual(['SN_' + snap.id], snapshots(name))
        write(dev, 'second')
        vol.refresh()
        vol.status = 'reverting'
        vol.save()
        snap.status = fields.SnapshotStatus.RESTORING
        snap.save()
        self.manager.revert_to_snapshot(self.ctx, vol, snap)
        vol.refresh()
        self.assertEqual('available', vol.status)
        self.assertEqual(first, read(self.device(vol)))
        # The manager's safety snapshot of the revert is gone again.
        self.assertEqual(['SN_' + snap.id], snapshots(name))

        # Grow to 2 GiB.
        vol.status = 'extending'
        vol.save()
        self.manager.extend_volume(self.ctx, vol, 2, None)
        vol.refresh()
        self.assertEqual((2, 'available'), (vol.size, vol.status))
        self.assertEqual(2 * GIB, size_kib(name))

        # A clone, and a bigger volume from the snapshot: their own data.
        clone = self.create(source_volid=vol.id, size=2)
        self.assertEqual(first, read(self.device(clone)))
        from_snap = self.create(snapshot_id=snap.id, size=3)
        self.assertEqual(3 * GIB, size_kib('CV_' + from_snap.id))
        self.assertEqual(first, read(self.device(from_snap)))
        write(self.device(clone), 'clone')
        self.assertEqual(first, read(self.device(vol)))

        # Retype to the type of the other group, through the manager (the scheduler chose
        # this backend's CinderBoth pool).
        vol.refresh()
        vol.status = 'retyping'
        vol.previous_status = 'available'
        vol.save()
        self.manager.retype(self.ctx, vol, self.type_both.id,
                            {'host': '%s@strata#CinderBoth' % STORAGE, 'capabilities': {}},
                            migration_policy='never')
        vol.refresh()
        self.assertEqual(('available', self.type_both.id), (vol.status, vol.volume_type_id))
        self.assertEqual('CinderBoth', definition(name)['resource_group_name'])

        # Snapshot and volumes deleted through the manager: nothing is left.
        snap.status = fields.SnapshotStatus.DELETING
        snap.save()
        self.manager.delete_snapshot(self.ctx, snap)
        self.assertEqual([], snapshots(name))
        for v in (from_snap, clone, vol):
            self.delete(v)
            self.assertIsNone(definition('CV_' + v.id))

    def privileged_here(self):
        """Cinder's privileged helper run directly, and os-brick's and Cinder's privileged
        calls in this process rather than a privsep daemon (which Cinder's test base does
        not allow to start): these tests run as root."""
        self.mock_object(cinder.utils, 'get_root_helper', lambda: 'env')
        for ctx in (os_brick.privileged.default, cinder.privsep.sys_admin_pctxt):
            ctx.set_client_mode(False)
            self.addCleanup(ctx.set_client_mode, True)

    def test_images_are_copied_through_cinders_image_utilities(self):
        # Cinder's generic path: the volume attached here (os-brick's local connector on
        # the device initialize_connection names), qemu-img to and from it. Glance is
        # Cinder's own test stand-in, which keeps what is uploaded.
        self.privileged_here()
        self.flags(image_conversion_dir=self.useFixture(fixtures.TempDir()).path)
        glance = ImageStore()
        work = self.useFixture(fixtures.TempDir()).path
        raw = os.path.join(work, 'image.raw')
        data = (b'image-data' * 300000)[:2 << 20]
        with open(raw, 'wb') as f:
            f.write(data)
        qcow2 = os.path.join(work, 'image.qcow2')
        subprocess.run(['qemu-img', 'convert', '-f', 'raw', '-O', 'qcow2', raw, qcow2],
                       check=True)
        image_id = str(uuid.uuid4())
        with open(qcow2, 'rb') as f:
            glance.create(self.ctx, {'id': image_id, 'name': 'cirros', 'status': 'active',
                                     'disk_format': 'qcow2', 'container_format': 'bare',
                                     'size': os.path.getsize(qcow2)}, data=f)
        vol = self.create()
        self.driver.copy_image_to_volume(self.ctx, vol, glance, image_id)
        self.assertEqual(data, read(self.device(vol), len(data)))
        # And back: a new qcow2 image of the volume.
        out_id = str(uuid.uuid4())
        meta = {'id': out_id, 'name': 'saved', 'status': 'queued',
                'disk_format': 'qcow2', 'container_format': 'bare'}
        glance.create(self.ctx, dict(meta))
        self.driver.copy_volume_to_image(self.ctx, vol, glance, meta)
        saved = os.path.join(work, 'saved.qcow2')
        with open(saved, 'wb') as f:
            f.write(glance.uploaded[out_id])
        self.assertEqual(b'QFI\xfb', glance.uploaded[out_id][:4])
        back = os.path.join(work, 'back.raw')
        subprocess.run(['qemu-img', 'convert', '-O', 'raw', saved, back], check=True)
        self.assertEqual(GIB * 1024, os.path.getsize(back))
        self.assertEqual(data, read(back, len(data)))
        self.delete(vol)

    def test_a_volume_type_overrides_the_groups_placement(self):
        single = tests_utils.create_volume_type(
            self.ctx, name='single',
            extra_specs={'strata:resource_group': 'CinderBoth', 'strata:place_count': '1'})
        vol = self.create(vtype=single)
        name = 'CV_' + vol.id
        self.assertEqual('CinderBoth', definition(name)['resource_group_name'])
        self.assertEqual(1, len(resources(name)))
        self.delete(vol)
        # A storage pool no node has: the placement's reason, nothing left.
        nowhere = tests_utils.create_volume_type(
            self.ctx, name='nowhere', extra_specs={'strata:storage_pool': 'no_such_pool'})
        vol = self.volume(vtype=nowhere)
        e = self.assertRaises(exception.VolumeBackendAPIException,
                              self.manager.create_volume, self.ctx, vol)
        self.assertIn('no_such_pool', str(e))
        self.assertIsNone(definition('CV_' + vol.id))
        # A place count that is not a number: Cinder's invalid input.
        odd = tests_utils.create_volume_type(
            self.ctx, name='odd', extra_specs={'strata:place_count': 'two'})
        vol = self.volume(vtype=odd)
        self.assertRaises(exception.InvalidInput, self.manager.create_volume, self.ctx, vol)
        self.assertIsNone(definition('CV_' + vol.id))

    def test_a_backup_and_its_restore_go_through_cinders_backup_service(self):
        # The cinder-volume and cinder-backup services over Cinder's (fake) messaging, with
        # its POSIX backup driver: the backup service attaches the volume here through the
        # driver's connection, reads it, and writes it back on restore.
        self.privileged_here()
        store = self.useFixture(fixtures.TempDir()).path
        self.flags(backup_driver='cinder.backup.drivers.posix.PosixBackupDriver',
                   backup_posix_path=store)
        self.start_service('volume', host=STORAGE + '@strata')
        backup_service = self.start_service('backup', host=STORAGE)
        vol = self.create()
        dev = self.device(vol)
        data = write(dev, 'backed-up', 4 << 20)
        vol.status = 'backing-up'
        vol.previous_status = 'available'
        vol.save()
        backup = tests_utils.create_backup(self.ctx, volume_id=vol.id, host=STORAGE,
                                           status=fields.BackupStatus.CREATING)
        backup_service.manager.create_backup(self.ctx, backup)
        wait('the backup', lambda: refreshed(backup).status in ('available', 'error'), 120)
        self.assertEqual('available', backup.status, backup.fail_reason)
        written = sum(os.path.getsize(os.path.join(d, f))
                      for d, _, files in os.walk(store) for f in files)
        self.assertGreater(written, 0, 'the backup wrote nothing')
        wait('the volume back', lambda: refreshed(vol).status == 'available', 60)
        # Other data, then the backup restored over it.
        write(dev, 'overwritten', 4 << 20)
        vol.status = 'restoring-backup'
        vol.save()
        backup.status = fields.BackupStatus.RESTORING
        backup.save()
        backup_service.manager.restore_backup(self.ctx, backup, vol.id)
        wait('the restore', lambda: refreshed(vol).status in ('available', 'error_restoring'),
             120)
        self.assertEqual('available', vol.status)
        self.assertEqual(data, read(self.device(vol), len(data)))
        self.delete(vol)

    def test_a_volume_in_use_is_not_deleted(self):
        vol = self.create()
        name = 'CV_' + vol.id
        dev = self.device(vol)
        fd = os.open(dev, os.O_RDONLY | os.O_EXCL)
        try:
            wait('the volume in use', lambda: any(
                r['node_name'] == STORAGE and 'InUse' in linstor('resource', 'list', '-r', name)
                for r in resources(name)))
            self.delete(vol)
            vol.refresh()
            # Cinder's answer to VolumeIsBusy: the volume stays, available.
            self.assertEqual('available', vol.status)
            self.assertIsNotNone(definition(name))
        finally:
            os.close(fd)
        wait('the volume no longer in use',
             lambda: 'InUse' not in linstor('resource', 'list', '-r', name))
        self.delete(vol)
        self.assertIsNone(definition(name))

    def test_attach_on_a_compute_host_records_the_instance(self):
        vol = self.create(vtype=self.type_both)
        name = 'CV_' + vol.id
        self.assertEqual('CinderBoth', definition(name)['resource_group_name'])
        instance = str(uuid.uuid4())
        conn = self.driver.initialize_connection(vol, {'host': COMPUTE, 'instance': instance})
        dev = conn['data']['device_path']
        on = {r['node_name']: r for r in resources(name)}
        self.assertEqual(dev, on[COMPUTE]['volumes'][0]['device_path'])
        self.assertEqual(instance, on[COMPUTE]['props']['Aux/cinder/instance-uuid'])
        self.assertNotIn('Aux/cinder/instance-uuid', on[STORAGE]['props'])
        write(dev, 'compute')
        self.driver.terminate_connection(vol, {'host': COMPUTE})
        on = {r['node_name']: r for r in resources(name)}
        self.assertNotIn('Aux/cinder/instance-uuid', on[COMPUTE]['props'])
        # The replica the group placed there stays.
        self.assertIn(COMPUTE, on)
        # A connector without a host is refused.
        self.assertRaises(exception.InvalidConnectorException,
                          self.driver.initialize_connection, vol, {})
        self.delete(vol)
        self.assertIsNone(definition(name))

    def test_an_existing_resource_is_managed_and_unmanaged(self):
        linstor('resource-group', 'spawn-resources', 'CinderGrp', 'legacy_db', '20M')
        vol = self.volume(status='managing')
        self.manager.manage_existing(self.ctx, vol, {'source-name': 'legacy_db'})
        vol.refresh()
        self.assertEqual(('available', 1, 'legacy_db'),
                         (vol.status, vol.size, vol.provider_location))
        self.assertEqual(GIB, size_kib('legacy_db'))
        self.assertEqual(vol.id, definition('legacy_db')['props']['Aux/cinder/volume-id'])
        # Unmanaged: the resource stays, without Cinder's properties.
        vol.status = 'deleting'
        vol.save()
        self.manager.delete_volume(self.ctx, vol, unmanage_only=True)
        rd = definition('legacy_db')
        self.assertIsNotNone(rd)
        self.assertEqual([], [k for k in rd['props'] if k.startswith('Aux/cinder/')])
        # An unknown name: Cinder's invalid reference, the volume in error_managing.
        other = self.volume(status='managing')
        e = self.assertRaises(exception.ManageExistingInvalidReference,
                              self.manager.manage_existing, self.ctx, other,
                              {'source-name': 'no_such_rsc'})
        self.assertIn("no resource definition 'no_such_rsc'", str(e))
        other.refresh()
        self.assertEqual('error_managing', other.status)
        linstor('resource-definition', 'delete', 'legacy_db')

    def test_failures_leave_nothing_and_say_why(self):
        before = linstor('resource-definition', 'list')
        # Larger than the pools: the manager re-raises the driver's error, the volume is in
        # error, and the reason is the placement's.
        vol = self.volume(size=100000)
        e = self.assertRaises(exception.VolumeBackendAPIException,
                              self.manager.create_volume, self.ctx, vol)
        self.assertIn('1 replica(s) needed', str(e))
        vol.refresh()
        self.assertEqual('error', vol.status)
        self.assertIsNone(definition('CV_' + vol.id))
        # A volume type naming a group that does not exist.
        bad = tests_utils.create_volume_type(
            self.ctx, name='bad', extra_specs={'strata:resource_group': 'NoSuchGrp'})
        vol = self.volume(vtype=bad)
        e = self.assertRaises(exception.VolumeBackendAPIException,
                              self.manager.create_volume, self.ctx, vol)
        self.assertIn('NoSuchGrp', str(e))
        vol.refresh()
        self.assertEqual('error', vol.status)
        self.assertIsNone(definition('CV_' + vol.id))
        # No controller answers.
        self.flags(strata_controllers=['127.0.0.1:9'], strata_timeout=3,
                   group='backend_defaults')
        manager = importutils.import_object('cinder.volume.manager.VolumeManager')
        manager.driver.set_initialized()
        manager.stats = {'allocated_capacity_gb': 0, 'pools': {}}
        vol = self.volume()
        e = self.assertRaises(exception.VolumeBackendAPIException,
                              manager.create_volume, self.ctx, vol)
        self.assertIn('cannot be reached', str(e))
        vol.refresh()
        self.assertEqual('error', vol.status)
        self.assertEqual(before, linstor('resource-definition', 'list'))
