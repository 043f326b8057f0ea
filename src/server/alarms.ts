import { Backend } from '../mvcc/backend';

// Cluster alarms (etcd's NOSPACE and CORRUPT), replicated through the log and kept in
// LevelDB beside the store. While NOSPACE is raised, writes that add data are refused;
// while CORRUPT is raised, every request is.
//
// LevelDB layout, format version 1:  "a" | member id (u64be) | alarm type (u8) -> empty

const ALARM_PREFIX = 0x61; // 'a'

export const enum AlarmType {
  None = 0,
  NoSpace = 1,
  Corrupt = 2,
}

export interface Alarm {
  memberId: bigint;
  type: AlarmType;
}

export class Alarms {
  private readonly active = new Map<string, Alarm>();

  private constructor(private readonly backend: Backend) {}

  static async open(backend: Backend): Promise<Alarms> {
    const alarms = new Alarms(backend);
    await alarms.load();
    return alarms;
  }

  /** Reads the alarms back from LevelDB (start-up, snapshot install). */
  async load(): Promise<void> {
    this.active.clear();
    await this.backend.scan(Buffer.of(ALARM_PREFIX), Buffer.of(ALARM_PREFIX + 1), (chunk) => {
      for (const [k] of chunk) {
        const a = { memberId: k.readBigUInt64BE(1), type: k[9] as AlarmType };
        this.active.set(id(a), a);
      }
    });
  }

  list(): Alarm[] {
    return [...this.active.values()];
  }

  has(type: AlarmType): boolean {
    for (const a of this.active.values()) if (a.type === type) return true;
    return false;
  }

  /** Raises an alarm; returns it if it was not raised already. */
  activate(a: Alarm): Alarm | undefined {
    if (a.type === AlarmType.None || this.active.has(id(a))) return undefined;
    this.active.set(id(a), a);
    this.backend.put(key(a), Buffer.alloc(0));
    return a;
  }

  /** Clears an alarm; returns it if it was raised. */
  deactivate(a: Alarm): Alarm | undefined {
    const found = this.active.get(id(a));
    if (found === undefined) return undefined;
    this.active.delete(id(a));
    this.backend.del(key(a));
    return found;
  }
}

function id(a: Alarm): string {
  return `${a.memberId}:${a.type}`;
}

function key(a: Alarm): Buffer {
  const b = Buffer.alloc(10);
  b[0] = ALARM_PREFIX;
  b.writeBigUInt64BE(a.memberId, 1);
  b[9] = a.type;
  return b;
}
