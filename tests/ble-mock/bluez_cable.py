'''python-dbusmock template: BlueZ 5 with what caBLE needs

Loads the stock `bluez5` template and adds to it:
- LE devices whose ServiceData has the real BlueZ type (a{sv}, each value an ay);
  the stock AddDevice gets these types wrong, so btleplug would see no service data.
- Re-advertising: a PropertiesChanged(ServiceData) signal, as BlueZ sends for every
  repeated advert when the discovery filter sets DuplicateData.
- org.bluez.LEAdvertisingManager1 on every adapter. A registered advertisement is read
  back from its owner (GetAll on org.bluez.LEAdvertisement1, as bluetoothd does) and put
  "on the air": every adapter that is discovering sees it as an LE device, repeated every
  REPEAT_MS milliseconds, until it is unregistered or its owner leaves the bus.
- Discovery that behaves like bluetoothd where clients notice: StartDiscovery works
  without a prior SetDiscoveryFilter, fails with org.bluez.Error.NotReady on a powered-off
  adapter, and the last discovery filter can be read back (GetDiscoveryFilter).
- Fault injection (SetFault) to make a method fail with a given D-Bus error name, and
  adapters that cannot advertise (DisableAdvertising).

Parameters (JSON): {"repeat_ms": 100}.
'''

import dbus
from gi.repository import GLib

from dbusmock import OBJECT_MANAGER_IFACE, mockobject
from dbusmock.templates import bluez5
# Re-export the stock methods and constants: dbusmock registers every D-Bus method
# found in this module.
from dbusmock.templates.bluez5 import *  # noqa: F401,F403 pylint: disable=wildcard-import,unused-wildcard-import
from dbusmock.templates.bluez5 import (ADAPTER_IFACE, BLUEZ_MOCK_IFACE, BUS_NAME,  # noqa: F401
                                       DEVICE_IFACE, IS_OBJECT_MANAGER, MAIN_OBJ, SYSTEM_BUS)

LE_ADV_MANAGER_IFACE = 'org.bluez.LEAdvertisingManager1'
LE_ADV_IFACE = 'org.bluez.LEAdvertisement1'
SUPPORTED_INSTANCES = 5

STATE = {'repeat_ms': 100, 'next_device': 1, 'adverts': {}, 'timer': None}


def load(mock, parameters):
    bluez5.load(mock, parameters)
    parameters = parameters or {}
    STATE['repeat_ms'] = int(parameters.get('repeat_ms', 100))


def _adapter(name):
    path = '/org/bluez/' + name
    if path not in mockobject.objects:
        raise dbus.exceptions.DBusException(f'Adapter {name} does not exist.',
                                            name=BLUEZ_MOCK_IFACE + '.NoSuchAdapter')
    return mockobject.objects[path]


def _adapters():
    return [obj for path, obj in list(mockobject.objects.items())
            if path.count('/') == 3 and path.startswith('/org/bluez/hci')]


def _raise_fault(adapter, method):
    fault = getattr(adapter, 'faults', {}).get(method)
    if fault:
        raise dbus.exceptions.DBusException(f'{method} failed (injected)', name=fault)


def _service_data_variant(service_data):
    '''{uuid: bytes} -> the a{sv} of ay that BlueZ puts in Device1.ServiceData.'''
    return dbus.Dictionary(
        {str(uuid): dbus.Array([dbus.Byte(b) for b in data], signature='y', variant_level=1)
         for uuid, data in service_data.items()},
        signature='sv', variant_level=1)


def _add_le_device(adapter, address, service_data, name=None):
    adapter_path = adapter.__dbus_object_path__
    path = adapter_path + '/dev_' + address.replace(':', '_').upper()
    properties = {
        'Address': dbus.String(address, variant_level=1),
        'AddressType': dbus.String('random', variant_level=1),
        'Alias': dbus.String(name or address.replace(':', '-'), variant_level=1),
        'Paired': dbus.Boolean(False, variant_level=1),
        'Bonded': dbus.Boolean(False, variant_level=1),
        'Connected': dbus.Boolean(False, variant_level=1),
        'Trusted': dbus.Boolean(False, variant_level=1),
        'Blocked': dbus.Boolean(False, variant_level=1),
        'LegacyPairing': dbus.Boolean(False, variant_level=1),
        'ServicesResolved': dbus.Boolean(False, variant_level=1),
        'Adapter': dbus.ObjectPath(adapter_path, variant_level=1),
        'RSSI': dbus.Int16(-60, variant_level=1),
        'UUIDs': dbus.Array([], signature='s', variant_level=1),
        'ManufacturerData': dbus.Dictionary({}, signature='qv', variant_level=1),
        'ServiceData': _service_data_variant(service_data),
    }
    if name:
        properties['Name'] = dbus.String(name, variant_level=1)
    adapter.AddObject(path, DEVICE_IFACE, properties, [])
    mockobject.objects['/'].EmitSignal(OBJECT_MANAGER_IFACE, 'InterfacesAdded', 'oa{sa{sv}}', [
        dbus.ObjectPath(path), {DEVICE_IFACE: properties}])
    return path


def _readvertise(device_path, service_data):
    device = mockobject.objects[device_path]
    value = _service_data_variant(service_data)
    device.props[DEVICE_IFACE]['ServiceData'] = value
    device.EmitSignal(dbus.PROPERTIES_IFACE, 'PropertiesChanged', 'sa{sv}as', [
        DEVICE_IFACE, {'ServiceData': value}, []])


def _remove_device(device_path):
    if device_path in mockobject.objects:
        mockobject.objects['/'].RemoveObject(device_path)
        mockobject.objects['/'].EmitSignal(OBJECT_MANAGER_IFACE, 'InterfacesRemoved', 'oas', [
            dbus.ObjectPath(device_path), [DEVICE_IFACE]])


def _set_adapter_props(adapter, changed):
    for key, value in changed.items():
        adapter.props[ADAPTER_IFACE][key] = value
    adapter.EmitSignal(dbus.PROPERTIES_IFACE, 'PropertiesChanged', 'sa{sv}as', [
        ADAPTER_IFACE, changed, []])


# --- Mock control interface ------------------------------------------------------------

@dbus.service.method(BLUEZ_MOCK_IFACE, in_signature='ss', out_signature='s')
def AddAdapter(self, device_name, system_name):
    '''Stock AddAdapter, plus LEAdvertisingManager1 and bluetoothd-like discovery.'''
    path = bluez5.AddAdapter(self, device_name, system_name)
    adapter = mockobject.objects[path]
    adapter.discovery_filter = None
    adapter.faults = {}
    adapter.discovery_clients = {}
    adapter.AddMethods(ADAPTER_IFACE, [
        ('SetDiscoveryFilter', 'a{sv}', '', _set_discovery_filter),
    ])

    # Discovery is tracked per client (bus name), as bluetoothd does: the adapter is
    # discovering while any client wants it; a client that leaves the bus stops wanting it.
    @dbus.service.method(ADAPTER_IFACE, in_signature='', out_signature='', sender_keyword='sender')
    def StartDiscovery(obj, sender=None):
        _start_discovery(obj, str(sender))

    @dbus.service.method(ADAPTER_IFACE, in_signature='', out_signature='', sender_keyword='sender')
    def StopDiscovery(obj, sender=None):
        _stop_discovery(obj, str(sender))

    adapter.methods[ADAPTER_IFACE]['StartDiscovery'] = ('', '', '', StartDiscovery)
    adapter.methods[ADAPTER_IFACE]['StopDiscovery'] = ('', '', '', StopDiscovery)
    adapter.AddProperties(LE_ADV_MANAGER_IFACE, {
        'ActiveInstances': dbus.Byte(0, variant_level=1),
        'SupportedInstances': dbus.Byte(SUPPORTED_INSTANCES, variant_level=1),
        'SupportedIncludes': dbus.Array(['tx-power', 'appearance', 'local-name'],
                                        signature='s', variant_level=1),
    })
    # Registered directly (not through AddMethods) to learn the caller's bus name and to
    # reply only after reading the advertisement back, as bluetoothd does.
    @dbus.service.method(LE_ADV_MANAGER_IFACE, in_signature='oa{sv}', out_signature='',
                         sender_keyword='sender', async_callbacks=('reply', 'error'))
    def RegisterAdvertisement(obj, path, options, sender=None, reply=None, error=None):
        _register_advertisement(obj, path, options, sender, reply, error)

    @dbus.service.method(LE_ADV_MANAGER_IFACE, in_signature='o', out_signature='',
                         sender_keyword='sender')
    def UnregisterAdvertisement(obj, path, sender=None):
        _unregister_advertisement(obj, path, sender)

    adapter.methods.setdefault(LE_ADV_MANAGER_IFACE, {})
    adapter.methods[LE_ADV_MANAGER_IFACE]['RegisterAdvertisement'] = (
        'oa{sv}', '', '', RegisterAdvertisement)
    adapter.methods[LE_ADV_MANAGER_IFACE]['UnregisterAdvertisement'] = (
        'o', '', '', UnregisterAdvertisement)
    return path


@dbus.service.method(BLUEZ_MOCK_IFACE, in_signature='ssa{say}', out_signature='s')
def AddLEDevice(self, adapter_name, address, service_data):
    '''Adds an LE device (as if its advert was just received) with typed ServiceData.

    service_data maps 128-bit UUID strings to bytes. Returns the device path.
    '''
    adapter = _adapter(adapter_name)
    return _add_le_device(adapter, address,
                          {str(k): bytes(v) for k, v in service_data.items()})


@dbus.service.method(BLUEZ_MOCK_IFACE, in_signature='ssa{say}', out_signature='')
def Readvertise(self, adapter_name, address, service_data):
    '''A repeated advert from a known device: PropertiesChanged(ServiceData).'''
    adapter = _adapter(adapter_name)
    path = adapter.__dbus_object_path__ + '/dev_' + address.replace(':', '_').upper()
    if path not in mockobject.objects:
        raise dbus.exceptions.DBusException(f'No device {address}',
                                            name=BLUEZ_MOCK_IFACE + '.NoSuchDevice')
    _readvertise(path, {str(k): bytes(v) for k, v in service_data.items()})


@dbus.service.method(BLUEZ_MOCK_IFACE, in_signature='sb', out_signature='')
def SetAdapterPowered(self, adapter_name, powered):
    '''Switches an adapter on or off (off also ends discovery, as in bluetoothd).'''
    adapter = _adapter(adapter_name)
    changed = {'Powered': dbus.Boolean(powered, variant_level=1)}
    if not powered:
        changed['Discovering'] = dbus.Boolean(False, variant_level=1)
        for watch in adapter.discovery_clients.values():
            watch.cancel()
        adapter.discovery_clients.clear()
    _set_adapter_props(adapter, changed)


@dbus.service.method(BLUEZ_MOCK_IFACE, in_signature='s', out_signature='a{sv}')
def GetDiscoveryFilter(self, adapter_name):
    '''The filter of the last SetDiscoveryFilter call (empty if none).'''
    adapter = _adapter(adapter_name)
    return dbus.Dictionary(adapter.discovery_filter or {}, signature='sv')


@dbus.service.method(BLUEZ_MOCK_IFACE, in_signature='s', out_signature='aa{sv}')
def ListAdvertisements(self, adapter_name):
    '''Registered advertisements on an adapter, with their properties as read from
    their owners plus "Owner" and "Path".'''
    adapter = _adapter(adapter_name)
    out = []
    for (owner, path, name), advert in STATE['adverts'].items():
        if name != adapter_name:
            continue
        props = dict(advert['props'])
        props['Owner'] = dbus.String(owner)
        props['Path'] = dbus.ObjectPath(path)
        out.append(dbus.Dictionary(props, signature='sv'))
    return dbus.Array(out, signature='a{sv}')


@dbus.service.method(BLUEZ_MOCK_IFACE, in_signature='s', out_signature='')
def DisableAdvertising(self, adapter_name):
    '''Removes LEAdvertisingManager1 from an adapter (old BlueZ, controller without LE).'''
    adapter = _adapter(adapter_name)
    adapter.props.pop(LE_ADV_MANAGER_IFACE, None)
    adapter.methods.pop(LE_ADV_MANAGER_IFACE, None)
    mockobject.objects['/'].EmitSignal(OBJECT_MANAGER_IFACE, 'InterfacesRemoved', 'oas', [
        dbus.ObjectPath(adapter.__dbus_object_path__), [LE_ADV_MANAGER_IFACE]])


@dbus.service.method(BLUEZ_MOCK_IFACE, in_signature='sss', out_signature='')
def SetFault(self, adapter_name, method, error_name):
    '''Makes Adapter1/LEAdvertisingManager1 method `method` fail with D-Bus error
    `error_name` from now on; an empty name clears the fault.'''
    adapter = _adapter(adapter_name)
    if error_name:
        adapter.faults[method] = error_name
    else:
        adapter.faults.pop(method, None)


# --- Adapter1 discovery --------------------------------------------------------------

def _start_discovery(adapter, sender):
    adapter.log(f'StartDiscovery from {sender}')
    _raise_fault(adapter, 'StartDiscovery')
    if not adapter.props[ADAPTER_IFACE]['Powered']:
        raise dbus.exceptions.DBusException('Resource Not Ready', name='org.bluez.Error.NotReady')
    if sender in adapter.discovery_clients:
        raise dbus.exceptions.DBusException('Operation already in progress',
                                            name='org.bluez.Error.InProgress')
    adapter.discovery_clients[sender] = adapter.connection.watch_name_owner(
        sender, lambda owner: owner == '' and _forget_discovery_client(adapter, sender))
    _update_discovering(adapter)
    _tick()


def _stop_discovery(adapter, sender):
    adapter.log(f'StopDiscovery from {sender}')
    _raise_fault(adapter, 'StopDiscovery')
    if sender not in adapter.discovery_clients:
        raise dbus.exceptions.DBusException('No discovery started', name='org.bluez.Error.Failed')
    _forget_discovery_client(adapter, sender)


def _forget_discovery_client(adapter, sender):
    watch = adapter.discovery_clients.pop(sender, None)
    if watch is not None:
        watch.cancel()
    _update_discovering(adapter)


def _update_discovering(adapter):
    discovering = bool(adapter.discovery_clients) and bool(adapter.props[ADAPTER_IFACE]['Powered'])
    if bool(adapter.props[ADAPTER_IFACE]['Discovering']) != discovering:
        _set_adapter_props(adapter, {'Discovering': dbus.Boolean(discovering, variant_level=1)})


def _set_discovery_filter(adapter, discovery_filter):
    _raise_fault(adapter, 'SetDiscoveryFilter')
    adapter.discovery_filter = discovery_filter


# --- LEAdvertisingManager1 -----------------------------------------------------------

def _register_advertisement(adapter, path, _options, sender, reply, error):
    name = adapter.__dbus_object_path__.rsplit('/', 1)[-1]
    adapter.log(f'RegisterAdvertisement {path} from {sender}')
    try:
        _raise_fault(adapter, 'RegisterAdvertisement')
        key = (str(sender), str(path), name)
        if key in STATE['adverts']:
            raise dbus.exceptions.DBusException('Already Exists', name='org.bluez.Error.AlreadyExists')
        if sum(1 for k in STATE['adverts'] if k[2] == name) >= SUPPORTED_INSTANCES:
            raise dbus.exceptions.DBusException('Maximum advertisements reached',
                                                name='org.bluez.Error.NotPermitted')
    except dbus.exceptions.DBusException as e:
        error(e)
        return

    def got_props(props):
        try:
            advert = _parse_advertisement(props)
        except dbus.exceptions.DBusException as e:
            error(e)
            return
        advert['props'] = props
        STATE['next_device'] += 1
        n = STATE['next_device']
        # A random static address (two top bits set), different per advert.
        advert['address'] = f'C0:CA:B1:E0:{(n >> 8) & 0xff:02X}:{n & 0xff:02X}'
        advert['devices'] = {}
        advert['watch'] = adapter.connection.watch_name_owner(
            str(sender), lambda owner: owner == '' and _drop_advert(key))
        STATE['adverts'][key] = advert
        _update_active_instances(adapter)
        _ensure_timer()
        reply()
        _tick()

    adapter.connection.call_async(
        str(sender), str(path), dbus.PROPERTIES_IFACE, 'GetAll', 's', (LE_ADV_IFACE,),
        got_props, lambda e: error(dbus.exceptions.DBusException(
            f'Failed to read advertisement: {e}', name='org.bluez.Error.Failed')))


def _unregister_advertisement(adapter, path, sender):
    name = adapter.__dbus_object_path__.rsplit('/', 1)[-1]
    adapter.log(f'UnregisterAdvertisement {path} from {sender}')
    _raise_fault(adapter, 'UnregisterAdvertisement')
    key = (str(sender), str(path), name)
    if key not in STATE['adverts']:
        raise dbus.exceptions.DBusException('Does Not Exist', name='org.bluez.Error.DoesNotExist')
    _drop_advert(key)


def _parse_advertisement(props):
    kind = str(props.get('Type', ''))
    if kind not in ('broadcast', 'peripheral'):
        raise dbus.exceptions.DBusException(f'Invalid advertisement type {kind!r}',
                                            name='org.bluez.Error.InvalidArguments')
    service_data = {}
    for uuid, value in props.get('ServiceData', {}).items():
        if not isinstance(value, (dbus.Array, dbus.ByteArray, bytes)):
            raise dbus.exceptions.DBusException('ServiceData values must be ay',
                                                name='org.bluez.Error.InvalidArguments')
        service_data[str(uuid)] = bytes(int(b) for b in value)
    return {'type': kind, 'service_data': service_data}


def _drop_advert(key):
    advert = STATE['adverts'].pop(key, None)
    if advert is None:
        return
    advert['watch'].cancel()
    for device_path in advert['devices'].values():
        _remove_device(device_path)
    try:
        _update_active_instances(_adapter(key[2]))
    except dbus.exceptions.DBusException:
        pass


def _update_active_instances(adapter):
    name = adapter.__dbus_object_path__.rsplit('/', 1)[-1]
    count = dbus.Byte(sum(1 for k in STATE['adverts'] if k[2] == name), variant_level=1)
    adapter.props[LE_ADV_MANAGER_IFACE]['ActiveInstances'] = count
    adapter.EmitSignal(dbus.PROPERTIES_IFACE, 'PropertiesChanged', 'sa{sv}as', [
        LE_ADV_MANAGER_IFACE, {'ActiveInstances': count}, []])


def _ensure_timer():
    if STATE['timer'] is None:
        STATE['timer'] = GLib.timeout_add(STATE['repeat_ms'], _on_timer)


def _on_timer():
    _tick()
    if STATE['adverts']:
        return True
    STATE['timer'] = None
    return False


def _tick():
    '''One round of adverts: every discovering adapter receives every registered advert.'''
    for advert in list(STATE['adverts'].values()):
        for adapter in _adapters():
            if not adapter.props[ADAPTER_IFACE]['Discovering']:
                continue
            path = advert['devices'].get(adapter.__dbus_object_path__)
            if path is None or path not in mockobject.objects:
                advert['devices'][adapter.__dbus_object_path__] = _add_le_device(
                    adapter, advert['address'], advert['service_data'])
            else:
                _readvertise(path, advert['service_data'])
