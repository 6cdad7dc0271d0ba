"""The Cinder volume driver: Cinder's calls checked and handed to ``strata-cinder``.

cinder.conf::

    [strata]
    volume_driver = strata_cinder.driver.StrataDriver
    volume_backend_name = strata
    strata_controllers = 10.0.0.1:3370,10.0.0.2:3370
    strata_resource_group = cinder

Volumes are resources named ``CV_<volume id>`` and snapshots ``SN_<snapshot id>`` (as
Cinder's LINSTOR driver names them); a managed resource keeps its own name (kept in the
volume's ``provider_location``).
"""

from __future__ import annotations

from typing import Any, Dict, Optional, Tuple

from oslo_config import cfg
from oslo_log import log as logging

from cinder import exception
from cinder import interface
from cinder.common import constants
from cinder.volume import configuration
from cinder.volume import driver
from cinder.volume import volume_utils

from strata_cinder import helper

LOG = logging.getLogger(__name__)

strata_opts = [
    cfg.ListOpt('strata_controllers', default=['127.0.0.1:3370'],
                help='Controllers (host[:port] or URLs), tried in order.'),
    cfg.StrOpt('strata_resource_group', default='DfltRscGrp',
               help='Resource group of volumes whose type names none.'),
    cfg.ListOpt('strata_pools', default=[],
                help='Resource groups offered as pools of this backend (besides '
                     'strata_resource_group); a volume placed in a pool is spawned '
                     'from that group.'),
    cfg.BoolOpt('strata_diskless_attach', default=True,
                help='Attach a volume on a host without a replica as a diskless DRBD '
                     'client; when false a replica is made there instead.'),
    cfg.StrOpt('strata_cafile', help='CA of the controllers\' HTTPS certificates.'),
    cfg.StrOpt('strata_certfile', help='Client certificate for the controllers.'),
    cfg.StrOpt('strata_keyfile', help='Key of the client certificate.'),
    cfg.StrOpt('strata_token_file',
               help='File whose first line is the API token (default: the token '
                    'in /var/lib/linstor.d/auth.json, if any).'),
    cfg.BoolOpt('strata_allow_insecure_auth', default=False,
                help='Send the token over plain HTTP (test clusters only).'),
    cfg.IntOpt('strata_timeout', default=30, min=1,
               help='Seconds a controller call, or waiting for a device, may take.'),
    cfg.StrOpt('strata_helper', default='/usr/lib/strata/strata-cinder',
               help='The strata-cinder program.'),
]

CONF = cfg.CONF
CONF.register_opts(strata_opts, group=configuration.SHARED_CONF_GROUP)

VOLUME_PREFIX = 'CV_'
SNAPSHOT_PREFIX = 'SN_'
# Extra specs of volume types.
SPEC_GROUP = 'strata:resource_group'
SPEC_PLACE_COUNT = 'strata:place_count'
SPEC_STORAGE_POOL = 'strata:storage_pool'
# Properties of the volume's resource definition.
PROP_VOLUME_ID = 'Aux/cinder/volume-id'
PROP_VOLUME_NAME = 'Aux/cinder/volume-name'


@interface.volumedriver
class StrataDriver(driver.VolumeDriver):
    """Replicated volumes of a Strata (LINSTOR-compatible) cluster, attached locally."""

    VERSION = '1.0.0'
    CI_WIKI_NAME = 'Strata_CI'

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.configuration.append_config_values(strata_opts)
        self._stats: Dict[str, Any] = {}

    @staticmethod
    def get_driver_options():
        return strata_opts

    # -- the call ---------------------------------------------------------------------

    def _conf(self, name: str) -> Any:
        return self.configuration.safe_get(name)

    def _config(self) -> Dict[str, Any]:
        return {
            'controllers': ','.join(self._conf('strata_controllers') or []),
            'group': self._conf('strata_resource_group'),
            'diskless': bool(self._conf('strata_diskless_attach')),
            'cafile': self._conf('strata_cafile'),
            'certfile': self._conf('strata_certfile'),
            'keyfile': self._conf('strata_keyfile'),
            'token_file': self._conf('strata_token_file'),
            'allow_insecure_auth': bool(self._conf('strata_allow_insecure_auth')),
            'timeout': self._conf('strata_timeout'),
        }

    def _call(self, op: str, **args: Any) -> Any:
        timeout = (self._conf('strata_timeout') or 30) * 3
        return helper.call(self._conf('strata_helper'), op, self._config(), args,
                           timeout=timeout)

    @staticmethod
    def _backend_error(e: helper.HelperError) -> exception.VolumeBackendAPIException:
        return exception.VolumeBackendAPIException(data=e.message)

    # -- names, groups ----------------------------------------------------------------

    @staticmethod
    def _resource(volume) -> str:
        return volume.provider_location or VOLUME_PREFIX + volume.id

    @staticmethod
    def _snapshot(snapshot) -> str:
        return SNAPSHOT_PREFIX + snapshot.id

    @staticmethod
    def _specs(volume_type) -> Dict[str, str]:
        """Extra specs of a volume type: an object (a volume's), or the dict the volume
        manager hands to retype."""
        if volume_type is None:
            return {}
        if isinstance(volume_type, dict):
            specs = volume_type.get('extra_specs')
        else:
            specs = getattr(volume_type, 'extra_specs', None)
        return dict(specs) if isinstance(specs, dict) else {}

    def _placement(self, volume, volume_type=None) -> Dict[str, Any]:
        """The resource group (and overrides) a volume is spawned from: its type's extra
        spec, else the pool the scheduler chose, else the backend's group."""
        specs = self._specs(volume_type if volume_type is not None else volume.volume_type)
        pool = volume_utils.extract_host(volume.host, 'pool') if volume.host else None
        placed: Dict[str, Any] = {
            'group': specs.get(SPEC_GROUP) or pool or self._conf('strata_resource_group'),
        }
        count = specs.get(SPEC_PLACE_COUNT)
        if count:
            try:
                placed['place_count'] = int(count)
            except ValueError:
                raise exception.InvalidInput(
                    reason='%s %r of the volume type is not a number' % (SPEC_PLACE_COUNT, count))
        if specs.get(SPEC_STORAGE_POOL):
            placed['storage_pool'] = specs[SPEC_STORAGE_POOL]
        return placed

    @staticmethod
    def _props(volume) -> Dict[str, str]:
        props = {PROP_VOLUME_ID: volume.id}
        if volume.display_name:
            props[PROP_VOLUME_NAME] = volume.display_name
        return props

    # -- set-up, stats ----------------------------------------------------------------

    def do_setup(self, context) -> None:
        pass

    def check_for_setup_error(self) -> None:
        try:
            self._call('stats', groups=self._groups())
        except helper.HelperError as e:
            raise self._backend_error(e)

    def _groups(self):
        groups = [self._conf('strata_resource_group')]
        for g in self._conf('strata_pools') or []:
            if g not in groups:
                groups.append(g)
        return groups

    def _update_volume_stats(self) -> None:
        name = self._conf('volume_backend_name') or 'strata'
        try:
            answer = self._call('stats', groups=self._groups())
        except helper.HelperError as e:
            LOG.warning('Strata backend %s: no capacity report: %s', name, e.message)
            answer = {'pools': []}
        gib = 1024.0 * 1024.0
        pools = [{
            'pool_name': p['group'],
            'total_capacity_gb': round(p['total_kib'] / gib, 2),
            'free_capacity_gb': round(p['free_kib'] / gib, 2),
            'reserved_percentage': self._conf('reserved_percentage') or 0,
            'max_over_subscription_ratio': self._conf('max_over_subscription_ratio') or 20.0,
            'thin_provisioning_support': True,
            'thick_provisioning_support': True,
            'multiattach': True,
            'QoS_support': False,
            'location_info': 'StrataDriver:%s' % p['group'],
        } for p in answer.get('pools', [])]
        self._stats = {
            'volume_backend_name': name,
            'vendor_name': 'Strata',
            'driver_version': self.VERSION,
            'storage_protocol': constants.DRBD,
            'pools': pools,
        }

    # -- volumes ----------------------------------------------------------------------

    def create_volume(self, volume) -> Dict[str, Any]:
        name = VOLUME_PREFIX + volume.id
        try:
            self._call('create', name=name, size_gib=volume.size,
                       props=self._props(volume), **self._placement(volume))
        except helper.HelperError as e:
            raise self._backend_error(e)
        return {'provider_location': name}

    def delete_volume(self, volume) -> None:
        try:
            self._call('delete', name=self._resource(volume))
        except helper.HelperError as e:
            if e.kind == 'busy':
                LOG.warning('Volume %s is in use: %s', volume.id, e.message)
                raise exception.VolumeIsBusy(volume_name=volume.name)
            raise self._backend_error(e)

    def extend_volume(self, volume, new_size) -> None:
        try:
            self._call('extend', name=self._resource(volume), size_gib=new_size)
        except helper.HelperError as e:
            if e.kind == 'not_found':
                raise exception.VolumeNotFound(volume_id=volume.id)
            raise self._backend_error(e)

    def create_cloned_volume(self, volume, src_vref) -> Dict[str, Any]:
        name = VOLUME_PREFIX + volume.id
        try:
            self._call('clone', source=self._resource(src_vref), name=name,
                       size_gib=volume.size, props=self._props(volume),
                       group=self._placement(volume)['group'])
        except helper.HelperError as e:
            if e.kind == 'not_found':
                raise exception.VolumeNotFound(volume_id=src_vref.id)
            raise self._backend_error(e)
        return {'provider_location': name}

    # -- snapshots --------------------------------------------------------------------

    def create_snapshot(self, snapshot) -> None:
        try:
            self._call('snapshot_create', name=self._resource(snapshot.volume),
                       snapshot=self._snapshot(snapshot))
        except helper.HelperError as e:
            if e.kind == 'not_found':
                raise exception.VolumeNotFound(volume_id=snapshot.volume_id)
            raise self._backend_error(e)

    def delete_snapshot(self, snapshot) -> None:
        try:
            self._call('snapshot_delete', name=self._resource(snapshot.volume),
                       snapshot=self._snapshot(snapshot))
        except helper.HelperError as e:
            raise self._backend_error(e)

    def create_volume_from_snapshot(self, volume, snapshot) -> Dict[str, Any]:
        name = VOLUME_PREFIX + volume.id
        try:
            self._call('from_snapshot', source=self._resource(snapshot.volume),
                       snapshot=self._snapshot(snapshot), name=name,
                       size_gib=volume.size, props=self._props(volume),
                       group=self._placement(volume)['group'])
        except helper.HelperError as e:
            if e.kind == 'not_found':
                raise exception.SnapshotNotFound(snapshot_id=snapshot.id)
            raise self._backend_error(e)
        return {'provider_location': name}

    def revert_to_snapshot(self, context, volume, snapshot) -> None:
        try:
            self._call('revert', name=self._resource(volume),
                       snapshot=self._snapshot(snapshot))
        except helper.HelperError as e:
            if e.kind == 'not_found':
                raise exception.SnapshotNotFound(snapshot_id=snapshot.id)
            raise self._backend_error(e)

    # -- attachments ------------------------------------------------------------------

    def create_export(self, context, volume, connector) -> None:
        return None

    def ensure_export(self, context, volume) -> None:
        return None

    def remove_export(self, context, volume) -> None:
        return None

    @staticmethod
    def _instance(volume, host: str) -> Optional[str]:
        for a in volume.volume_attachment or []:
            if a.instance_uuid and (a.attached_host in (None, host)):
                return a.instance_uuid
        return None

    def initialize_connection(self, volume, connector, **kwargs) -> Dict[str, Any]:
        host = (connector or {}).get('host')
        if not host:
            raise exception.InvalidConnectorException(missing='host')
        instance = (connector or {}).get('instance') or self._instance(volume, host)
        try:
            got = self._call('attach', name=self._resource(volume), host=host,
                             instance_uuid=instance)
        except helper.HelperError as e:
            raise self._backend_error(e)
        return {'driver_volume_type': 'local', 'data': {'device_path': got['device']}}

    def terminate_connection(self, volume, connector, **kwargs) -> None:
        host = (connector or {}).get('host')
        if not host:
            # Cinder's "every connection" (a forced detach): each host lets go when its
            # own detach comes; nothing is removed blindly.
            return
        try:
            self._call('detach', name=self._resource(volume), host=host)
        except helper.HelperError as e:
            if e.kind == 'busy':
                raise exception.VolumeIsBusy(volume_name=volume.name)
            raise self._backend_error(e)

    # -- manage, retype ---------------------------------------------------------------

    @staticmethod
    def _ref_name(existing_ref) -> str:
        name = (existing_ref or {}).get('source-name')
        if not name:
            raise exception.ManageExistingInvalidReference(
                existing_ref=existing_ref, reason='name the resource as source-name')
        return name

    def manage_existing_get_size(self, volume, existing_ref) -> int:
        name = self._ref_name(existing_ref)
        try:
            return int(self._call('manage_size', name=name)['size_gib'])
        except helper.HelperError as e:
            if e.kind in ('not_found', 'invalid'):
                raise exception.ManageExistingInvalidReference(
                    existing_ref=existing_ref, reason=e.message)
            raise self._backend_error(e)

    def manage_existing(self, volume, existing_ref) -> Dict[str, Any]:
        name = self._ref_name(existing_ref)
        try:
            self._call('manage', name=name, props=self._props(volume))
        except helper.HelperError as e:
            if e.kind in ('not_found', 'invalid'):
                raise exception.ManageExistingInvalidReference(
                    existing_ref=existing_ref, reason=e.message)
            raise self._backend_error(e)
        return {'provider_location': name}

    def unmanage(self, volume) -> None:
        try:
            self._call('unmanage', name=self._resource(volume))
        except helper.HelperError as e:
            raise self._backend_error(e)

    def retype(self, context, volume, new_type, diff, host) -> Tuple[bool, Optional[dict]]:
        """Moves the volume to the new type's resource group; False (Cinder then migrates
        it) when the new type asks for what a group change cannot give."""
        new_specs = self._specs(new_type)
        if new_specs.get(SPEC_PLACE_COUNT) or new_specs.get(SPEC_STORAGE_POOL):
            return False, None
        group = new_specs.get(SPEC_GROUP) or (
            volume_utils.extract_host(host['host'], 'pool') if host and host.get('host')
            else None) or self._conf('strata_resource_group')
        try:
            self._call('retype', name=self._resource(volume), group=group)
        except helper.HelperError as e:
            LOG.warning('Retype of volume %s to group %s: %s', volume.id, group, e.message)
            return False, None
        return True, None
