package PVE::Storage::Custom::StrataPlugin;

# Proxmox VE storage plugin of the Strata storage suite (a LINSTOR-compatible controller).
#
# A thin shim: it declares the storage type 'strata', its options and features, and hands
# every call to `strata-pve` (one process per call, a JSON request on stdin, a JSON answer
# on stdout, protocol version 1). Naming, sizes, placement, attaching a volume to this node
# and waiting for its device, snapshots: all of it is done there.
#
# storage.cfg:
#   strata: replicated
#       strata-controllers 10.0.0.1,10.0.0.2
#       strata-group pve_rg
#       content images,rootdir
#       shared 1

use strict;
use warnings;

use JSON;

use PVE::Cluster;
use PVE::INotify;
use PVE::Tools qw(run_command);
use PVE::Storage::Plugin;

use base qw(PVE::Storage::Plugin);

my $OWN_APIVER = 15;
my $PROTOCOL = 1;

sub api {
    my $current = eval { PVE::Storage::APIVER() } // $OWN_APIVER;
    return $current < $OWN_APIVER ? $current : $OWN_APIVER;
}

sub type {
    return 'strata';
}

sub plugindata {
    return {
        content => [{ images => 1, rootdir => 1 }, { images => 1, rootdir => 1 }],
        format => [{ raw => 1 }, 'raw'],
        'sensitive-properties' => {},
    };
}

sub properties {
    return {
        'strata-controllers' => {
            description => "Controllers, tried in order (host[:port] or URLs, comma separated).",
            type => 'string',
        },
        'strata-group' => {
            description => "Resource group new disks are spawned from (default DfltRscGrp).",
            type => 'string',
        },
        'strata-preferlocal' => {
            description => "Give a node that uses a disk a replica of its own where the group allows.",
            type => 'boolean',
        },
        'strata-controllervm' => {
            description => "VM id of the controller VM: its disks are left alone.",
            type => 'integer',
            minimum => 1,
        },
        'strata-cafile' => {
            description => "CA certificate(s) of the controller's HTTPS certificate (PEM).",
            type => 'string',
        },
        'strata-certfile' => {
            description => "Client certificate for the controller (PEM).",
            type => 'string',
        },
        'strata-keyfile' => {
            description => "Key of the client certificate (PEM).",
            type => 'string',
        },
        'strata-token-file' => {
            description => "File holding the controller's API token (else /var/lib/linstor.d/auth.json).",
            type => 'string',
        },
        'strata-allow-insecure-auth' => {
            description => "Send the token over plain HTTP too.",
            type => 'boolean',
        },
        'strata-statuscache' => {
            description => "Seconds a status answer is reused (default 0: always ask).",
            type => 'integer',
            minimum => 0,
        },
        'strata-timeout' => {
            description => "Seconds a call to the controller may take (default 20).",
            type => 'integer',
            minimum => 1,
            maximum => 55,
        },
    };
}

sub options {
    return {
        'strata-controllers' => { optional => 1 },
        'strata-group' => { optional => 1 },
        'strata-preferlocal' => { optional => 1 },
        'strata-controllervm' => { optional => 1 },
        'strata-cafile' => { optional => 1 },
        'strata-certfile' => { optional => 1 },
        'strata-keyfile' => { optional => 1 },
        'strata-token-file' => { optional => 1 },
        'strata-allow-insecure-auth' => { optional => 1 },
        'strata-timeout' => { optional => 1 },
        'strata-statuscache' => { optional => 1 },
        content => { optional => 1 },
        nodes => { optional => 1 },
        shared => { optional => 1 },
        disable => { optional => 1 },
    };
}

# --- the call to strata-pve ---------------------------------------------------------

my sub helper {
    return $ENV{STRATA_PVE_HELPER} // '/usr/lib/strata/strata-pve';
}

my sub call {
    my ($storeid, $scfg, $op, $args) = @_;

    my %cfg = map { $_ => $scfg->{$_} } grep { defined($scfg->{$_}) && !ref($scfg->{$_}) } keys %$scfg;
    my $request = JSON->new->canonical->encode({
        version => $PROTOCOL,
        op => $op,
        storeid => $storeid,
        node => PVE::INotify::nodename(),
        scfg => \%cfg,
        args => $args // {},
    });

    my $out = '';
    my $err = '';
    my $timeout = ($scfg->{'strata-timeout'} // 20) + 5;
    eval {
        run_command(
            [helper()],
            input => $request,
            outfunc => sub { $out .= "$_[0]\n"; },
            errfunc => sub { $err .= "$_[0]\n"; },
            timeout => $timeout,
        );
    };
    my $failed = $@;
    my $answer = eval { decode_json($out) };
    if (!$answer) {
        chomp($failed, $err);
        die "strata: " . ($failed || $err || "no answer from " . helper()) . "\n";
    }
    die "strata: $answer->{error}\n" if !$answer->{ok};
    return $answer->{result};
}

# --- volume names ---------------------------------------------------------------------

sub parse_volname {
    my ($class, $volname) = @_;

    if ($volname =~ m!^(?:(base-(\d+)-[^/\s]+)/)?((base|vm)-(\d+)-[^/\s@]+)$!) {
        my ($basename, $basevmid, $name, $kind, $vmid) = ($1, $2, $3, $4, $5);
        my $isBase = $kind eq 'base' ? 1 : undef;
        return ('images', $name, $vmid, $basename, $basevmid, $isBase, 'raw');
    }

    # A disk LINBIT's plugin made, used as it is.
    if ($volname =~ m!^(pm-[0-9a-f]{8}_(\d+))$!) {
        return ('images', $1, $2, undef, undef, undef, 'raw');
    }

    die "unable to parse strata volume name '$volname'\n";
}

sub filesystem_path {
    my ($class, $scfg, $volname, $snapname) = @_;
    die "strata: snapshots have no path of their own\n" if defined($snapname);
    my ($vtype, undef, $vmid) = $class->parse_volname($volname);
    my $path = call(undef, $scfg, 'path', { volname => $volname });
    return wantarray ? ($path, $vmid, $vtype) : $path;
}

sub path {
    my ($class, $scfg, $volname, $storeid, $snapname) = @_;
    die "strata: snapshots have no path of their own\n" if defined($snapname);
    my ($vtype, undef, $vmid) = $class->parse_volname($volname);
    my $path = call($storeid, $scfg, 'path', { volname => $volname });
    return wantarray ? ($path, $vmid, $vtype) : $path;
}

# --- storage ------------------------------------------------------------------------

sub check_connection {
    my ($class, $storeid, $scfg) = @_;
    return 1;
}

sub activate_storage {
    my ($class, $storeid, $scfg, $cache) = @_;
    return 1;
}

sub deactivate_storage {
    my ($class, $storeid, $scfg, $cache) = @_;
    return 1;
}

sub status {
    my ($class, $storeid, $scfg, $cache) = @_;
    my $s = call($storeid, $scfg, 'status', {});
    return ($s->{total}, $s->{avail}, $s->{used}, $s->{active} ? 1 : 0);
}

# --- volumes ------------------------------------------------------------------------

# The guest's name (a VM's `name`, a container's `hostname`), where Proxmox knows it.
my sub guest_name {
    my ($vmid) = @_;
    my $name = eval {
        PVE::Cluster::cfs_update();
        my $g = PVE::Cluster::get_vmlist()->{ids}->{$vmid} or return undef;
        my $dir = $g->{type} eq 'lxc' ? 'lxc' : 'qemu-server';
        my $raw = PVE::Cluster::get_config("nodes/$g->{node}/$dir/$vmid.conf") // return undef;
        $raw =~ m/^(?:name|hostname):\s*(\S+)\s*$/m ? $1 : undef;
    };
    return $name;
}

sub alloc_image {
    my ($class, $storeid, $scfg, $vmid, $fmt, $name, $size) = @_;
    die "unsupported format '$fmt'\n" if defined($fmt) && $fmt ne 'raw';
    # $size is in KiB; an empty name means "pick one".
    return call($storeid, $scfg, 'alloc_image', {
        vmid => $vmid + 0,
        name => ($name ? $name : undef),
        size_kib => $size + 0,
        vmname => guest_name($vmid),
    });
}

sub free_image {
    my ($class, $storeid, $scfg, $volname, $isBase, $format) = @_;
    call($storeid, $scfg, 'free_image', { volname => $volname });
    return undef;
}

sub list_images {
    my ($class, $storeid, $scfg, $vmid, $vollist, $cache) = @_;
    return call($storeid, $scfg, 'list_images', {
        vmid => (defined($vmid) ? $vmid + 0 : undef),
        vollist => $vollist,
    });
}

sub activate_volume {
    my ($class, $storeid, $scfg, $volname, $snapname, $cache, $hints) = @_;
    call($storeid, $scfg, 'activate_volume', { volname => $volname, snapname => $snapname });
    return 1;
}

sub deactivate_volume {
    my ($class, $storeid, $scfg, $volname, $snapname, $cache) = @_;
    return 1 if defined($snapname);
    call($storeid, $scfg, 'deactivate_volume', { volname => $volname });
    return 1;
}

sub volume_size_info {
    my ($class, $scfg, $storeid, $volname, $timeout) = @_;
    my $i = call($storeid, $scfg, 'volume_size_info', { volname => $volname });
    return wantarray ? ($i->{size}, 'raw', $i->{used}, $i->{parent}) : $i->{size};
}

sub volume_resize {
    my ($class, $scfg, $storeid, $volname, $size, $running, $snapname) = @_;
    die "strata: a snapshot cannot be resized\n" if $snapname;
    # $size is the new size in bytes.
    call($storeid, $scfg, 'volume_resize', { volname => $volname, size => $size + 0 });
    return undef;
}

# --- snapshots ----------------------------------------------------------------------

sub volume_snapshot {
    my ($class, $scfg, $storeid, $volname, $snap) = @_;
    call($storeid, $scfg, 'volume_snapshot', { volname => $volname, snap => $snap });
    return undef;
}

sub volume_snapshot_delete {
    my ($class, $scfg, $storeid, $volname, $snap, $running) = @_;
    call($storeid, $scfg, 'volume_snapshot_delete', { volname => $volname, snap => $snap });
    return undef;
}

sub volume_rollback_is_possible {
    my ($class, $scfg, $storeid, $volname, $snap, $blockers) = @_;
    my $info = call($storeid, $scfg, 'volume_snapshot_info', { volname => $volname });
    die "strata: snapshot '$snap' of '$volname' does not exist\n" if !$info->{$snap};
    return 1;
}

sub volume_snapshot_rollback {
    my ($class, $scfg, $storeid, $volname, $snap) = @_;
    call($storeid, $scfg, 'volume_snapshot_rollback', { volname => $volname, snap => $snap });
    return undef;
}

sub volume_snapshot_info {
    my ($class, $scfg, $storeid, $volname) = @_;
    return call($storeid, $scfg, 'volume_snapshot_info', { volname => $volname });
}

sub volume_has_feature {
    my ($class, $scfg, $feature, $storeid, $volname, $snapname, $running, $opts) = @_;

    my (undef, undef, undef, undef, undef, $isBase) = $class->parse_volname($volname);
    # What works: linked clones of a template's disk or of a snapshot.
    my $features = {
        snapshot => { current => 1 },
        clone => { base => 1, snap => 1 },
        template => { current => 1 },
        copy => { base => 1, current => 1 },
        sparseinit => { base => 1, current => 1 },
        rename => { current => 1 },
    };
    my $key = $snapname ? 'snap' : $isBase ? 'base' : 'current';
    return 1 if $features->{$feature} && $features->{$feature}->{$key};
    return undef;
}

sub create_base {
    my ($class, $storeid, $scfg, $volname) = @_;
    return call($storeid, $scfg, 'create_base', { volname => $volname });
}

sub clone_image {
    my ($class, $scfg, $storeid, $volname, $vmid, $snap) = @_;
    return call($storeid, $scfg, 'clone_image', {
        volname => $volname,
        vmid => $vmid + 0,
        snap => $snap,
    });
}

sub rename_volume {
    my ($class, $scfg, $storeid, $source_volname, $target_vmid, $target_volname) = @_;
    return call($storeid, $scfg, 'rename_volume', {
        volname => $source_volname,
        target_vmid => $target_vmid + 0,
        target_volname => $target_volname,
    });
}

1;
