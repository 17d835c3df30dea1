/**
 * Emits TypeScript for one message model: an interface per struct, a reader and a writer per
 * struct that take the version as a parameter, and default/isDefault helpers where tagged or
 * version-gated struct fields need them.
 *
 * Conventions in the emitted code: `r` is the Reader, `w` the Writer, `v` the version, `o` the
 * object being written. Version conditions are simplified against the range in which a struct
 * can be reached, so a struct that only exists in flexible versions has no flexible branches.
 */
import {
  intersect,
  type FieldModel,
  type FieldType,
  type MessageModel,
  type Primitive,
  type StructModel,
  type VersionRange,
} from './schema.js';

/** A condition as code: 'true' and 'false' are constants, anything else is an expression in v. */
type Cond = string;

function cond(range: VersionRange | null, reach: VersionRange): Cond {
  const x = intersect(range, reach);
  if (!x) return 'false';
  const parts: string[] = [];
  if (x.min > reach.min) parts.push(`v >= ${x.min}`);
  if (x.max < reach.max) parts.push(`v <= ${x.max}`);
  return parts.length ? parts.join(' && ') : 'true';
}

function sel(c: Cond, a: string, b: string): string {
  if (c === 'true') return a;
  if (c === 'false') return b;
  return `(${c} ? ${a} : ${b})`;
}

function and(a: Cond, b: Cond): Cond {
  if (a === 'false' || b === 'false') return 'false';
  if (a === 'true') return b;
  if (b === 'true') return a;
  return `${a} && ${b}`;
}

function fmtRange(r: VersionRange | null): string {
  if (!r) return 'none';
  if (r.max === Infinity) return `${r.min}+`;
  return r.min === r.max ? `${r.min}` : `${r.min}-${r.max}`;
}

const PRIM_TS: Record<Primitive, string> = {
  bool: 'boolean',
  int8: 'number',
  int16: 'number',
  uint16: 'number',
  int32: 'number',
  uint32: 'number',
  int64: 'bigint',
  float64: 'number',
  string: 'string',
  uuid: 'string',
  bytes: 'Buffer',
  records: 'Records',
};

function isNullableSomewhere(f: FieldModel): boolean {
  return f.nullableVersions !== null;
}

function tsType(f: FieldModel): string {
  const t = f.type;
  let base: string;
  if (t.kind === 'primitive') base = PRIM_TS[t.name];
  else if (t.kind === 'struct') base = t.struct.tsName;
  else base = `${t.element.kind === 'primitive' ? PRIM_TS[t.element.name] : t.element.struct.tsName}[]`;
  return isNullableSomewhere(f) ? `${base} | null` : base;
}

/** The default value of a field as a TypeScript expression (fresh objects for arrays/structs). */
function defaultExpr(f: FieldModel): string {
  const raw = f.defaultRaw;
  const t = f.type;
  if (t.kind === 'array') return raw === 'null' ? 'null' : '[]';
  if (t.kind === 'struct') return raw === 'null' && isNullableSomewhere(f) ? 'null' : `default${t.struct.tsName}()`;
  switch (t.name) {
    case 'bool':
      return raw === 'true' ? 'true' : 'false';
    case 'int8':
    case 'int16':
    case 'uint16':
    case 'int32':
    case 'uint32':
    case 'float64':
      return raw === undefined || raw === '' ? '0' : String(Number(raw));
    case 'int64':
      return raw === undefined || raw === '' ? '0n' : `${BigInt(raw).toString()}n`;
    case 'string':
      if (raw === 'null') return 'null';
      return JSON.stringify(raw ?? '');
    case 'uuid':
      return 'ZERO_UUID';
    case 'bytes':
      return raw === 'null' ? 'null' : 'EMPTY_BYTES';
    case 'records':
      return raw === 'null' || isNullableSomewhere(f) ? 'null' : 'EMPTY_BYTES';
  }
}

/** An expression that is true when `x` differs from the field's default. */
function nonDefaultExpr(f: FieldModel, x: string): string {
  const d = defaultExpr(f);
  const t = f.type;
  if (t.kind === 'array' || (t.kind === 'primitive' && (t.name === 'bytes' || t.name === 'records'))) {
    return d === 'null' ? `${x} !== null` : `(${x} === null || ${x}.length !== 0)`;
  }
  if (t.kind === 'struct') {
    return d === 'null' ? `${x} !== null` : `(${x} === null || !isDefault${t.struct.tsName}(${x}))`;
  }
  return `${x} !== ${d}`;
}

interface Ctx {
  msg: MessageModel;
  struct: StructModel;
  /** Flexible condition within this struct. */
  flex: Cond;
  lines: string[];
  indent: string;
}

function line(ctx: Ctx, text: string): void {
  ctx.lines.push(ctx.indent + text);
}

function block(ctx: Ctx, head: string, body: () => void, tail = '}'): void {
  line(ctx, head);
  const saved = ctx.indent;
  ctx.indent += '  ';
  body();
  ctx.indent = saved;
  line(ctx, tail);
}

function primRead(name: Primitive, rd: string, flex: Cond, nullable: Cond): string {
  switch (name) {
    case 'bool':
    case 'int8':
    case 'int16':
    case 'uint16':
    case 'int32':
    case 'uint32':
    case 'int64':
    case 'float64':
    case 'uuid':
      return `${rd}.${name}()`;
    case 'string':
      return sel(
        nullable,
        sel(flex, `${rd}.compactNullableString()`, `${rd}.nullableString()`),
        sel(flex, `${rd}.compactString()`, `${rd}.string()`),
      );
    case 'bytes':
    case 'records':
      return sel(
        nullable,
        sel(flex, `${rd}.compactNullableBytes()`, `${rd}.nullableBytes()`),
        sel(flex, `${rd}.compactBytes()`, `${rd}.bytes()`),
      );
  }
}

function primWrite(name: Primitive, wr: string, x: string, flex: Cond, nullable: Cond): string {
  switch (name) {
    case 'bool':
    case 'int8':
    case 'int16':
    case 'uint16':
    case 'int32':
    case 'uint32':
    case 'int64':
    case 'float64':
    case 'uuid':
      return `${wr}.${name}(${x})`;
    case 'string':
      return sel(
        nullable,
        sel(flex, `${wr}.compactNullableString(${x})`, `${wr}.nullableString(${x})`),
        sel(flex, `${wr}.compactString(${x} as string)`, `${wr}.string(${x} as string)`),
      );
    case 'bytes':
      return sel(
        nullable,
        sel(flex, `${wr}.compactNullableBytes(${x})`, `${wr}.nullableBytes(${x})`),
        sel(flex, `${wr}.compactBytes(${x} as Buffer)`, `${wr}.bytes(${x} as Buffer)`),
      );
    case 'records':
      return `${wr}.records(${x}, ${flex === 'true' || flex === 'false' ? flex : 'flexible'})`;
  }
}

/** Emits statements that read field `f` into local `dst` from reader `rd`. */
function emitFieldRead(ctx: Ctx, f: FieldModel, dst: string, rd: string, flex: Cond, reach: VersionRange, tagged = false): void {
  const nullable = cond(f.nullableVersions, reach);
  const t = f.type;
  const where = `${ctx.struct.kafkaName}.${f.name}`;
  if (t.kind === 'primitive') {
    line(ctx, `${dst} = ${primRead(t.name, rd, flex, nullable)};`);
  } else if (t.kind === 'struct') {
    const call = `read${t.struct.tsName}(${rd}, v)`;
    // A nullable struct starts with a presence marker: an int8 (negative for null), or an
    // unsigned varint (0 for null) inside a tagged field, as Kafka's generator does.
    const isNull = tagged ? `${rd}.uvarint() === 0` : `${rd}.int8() < 0`;
    if (nullable === 'false') line(ctx, `${dst} = ${call};`);
    else if (nullable === 'true') line(ctx, `${dst} = ${isNull} ? null : ${call};`);
    else line(ctx, `${dst} = ${nullable} && ${isNull} ? null : ${call};`);
  } else {
    const el = t.element;
    const elType = el.kind === 'primitive' ? PRIM_TS[el.name] : el.struct.tsName;
    const elRead = el.kind === 'primitive' ? primRead(el.name, rd, flex, 'false') : `read${el.struct.tsName}(${rd}, v)`;
    block(ctx, '{', () => {
      line(ctx, `const n = ${sel(flex, `${rd}.compactArrayLength()`, `${rd}.arrayLength()`)};`);
      block(ctx, 'if (n < 0) {', () => {
        if (nullable === 'true') line(ctx, `${dst} = null;`);
        else if (nullable === 'false') line(ctx, `throw new WireError('${where} is a null array but is not nullable');`);
        else {
          line(ctx, `if (!(${nullable})) throw new WireError('${where} is a null array but is not nullable in this version');`);
          line(ctx, `${dst} = null;`);
        }
      }, '} else {');
      ctx.indent += '  ';
      line(ctx, `const a: ${elType}[] = [];`);
      line(ctx, `for (let i = 0; i < n; i++) a.push(${elRead});`);
      line(ctx, `${dst} = a;`);
      ctx.indent = ctx.indent.slice(2);
      line(ctx, '}');
    });
  }
}

/** Emits statements that write value expression `x` of field `f` to writer `wr`. */
function emitFieldWrite(ctx: Ctx, f: FieldModel, x: string, wr: string, flex: Cond, reach: VersionRange, tagged = false): void {
  const nullable = cond(f.nullableVersions, reach);
  const t = f.type;
  const where = `${ctx.struct.kafkaName}.${f.name}`;
  if (isNullableSomewhere(f) && nullable !== 'true') {
    const c = nullable === 'false' ? `${x} === null` : `!(${nullable}) && ${x} === null`;
    line(ctx, `if (${c}) throw new EncodeError(\`${where} is null but not nullable in version \${v}\`);`);
  }
  if (t.kind === 'primitive') {
    line(ctx, `${primWrite(t.name, wr, x, flex, nullable)};`);
  } else if (t.kind === 'struct') {
    const plain = `write${t.struct.tsName}(${wr}, v, ${x}${isNullableSomewhere(f) ? ' as ' + t.struct.tsName : ''});`;
    // A nullable struct is preceded by a presence marker: int8 -1/1, or uvarint 0/1 when tagged.
    const marked = (): void => {
      line(ctx, `if (${x} === null) ${wr}.${tagged ? 'uvarint(0)' : 'int8(-1)'};`);
      line(ctx, `else { ${wr}.${tagged ? 'uvarint' : 'int8'}(1); write${t.struct.tsName}(${wr}, v, ${x}); }`);
    };
    if (nullable === 'false') line(ctx, plain);
    else if (nullable === 'true') marked();
    else {
      block(ctx, `if (${nullable}) {`, marked, '} else {');
      line(ctx, `  ${plain}`);
      line(ctx, '}');
    }
  } else {
    const el = t.element;
    block(ctx, '{', () => {
      line(ctx, `const a = ${x};`);
      if (isNullableSomewhere(f)) {
        line(ctx, `if (a === null) ${sel(flex, `${wr}.uvarint(0)`, `${wr}.int32(-1)`)};`);
        line(ctx, 'else {');
      } else {
        line(ctx, '{');
      }
      ctx.indent += '  ';
      line(ctx, `${sel(flex, `${wr}.uvarint(a.length + 1)`, `${wr}.int32(a.length)`)};`);
      const elWrite = el.kind === 'primitive' ? primWrite(el.name, wr, 'e', flex, 'false') : `write${el.struct.tsName}(${wr}, v, e)`;
      line(ctx, `for (const e of a) ${elWrite};`);
      ctx.indent = ctx.indent.slice(2);
      line(ctx, '}');
    });
  }
}

function local(f: FieldModel): string {
  return `_${f.prop}`;
}

function emitInterface(ctx: Ctx, s: StructModel): void {
  line(ctx, `/** ${s.kafkaName}${s === ctx.msg.root ? ` (versions ${fmtRange(ctx.msg.validVersions)})` : ''}. */`);
  block(ctx, `export interface ${s.tsName} {`, () => {
    for (const f of s.fields) {
      const t = f.type.kind === 'primitive' ? f.type.name : f.type.kind === 'struct' ? f.type.struct.kafkaName : `[]${f.type.element.kind === 'primitive' ? f.type.element.name : f.type.element.struct.kafkaName}`;
      const notes = [`${t}`, `versions ${fmtRange(f.versions)}`];
      if (f.nullableVersions) notes.push(`nullable ${fmtRange(f.nullableVersions)}`);
      if (f.taggedVersions) notes.push(`tag ${f.tag} in ${fmtRange(f.taggedVersions)}`);
      if (f.ignorable) notes.push('ignorable');
      if (f.mapKey) notes.push('map key');
      if (f.entityType) notes.push(`entity ${f.entityType}`);
      if (f.defaultRaw !== undefined) notes.push(`default ${f.defaultRaw}`);
      line(ctx, `/** ${notes.join(', ')} */`);
      line(ctx, `${f.prop}: ${tsType(f)};`);
    }
    line(ctx, '/** Tagged fields this codec does not know, kept so that re-encoding preserves them. */');
    line(ctx, 'unknownTaggedFields?: TaggedField[];');
  });
  line(ctx, '');
}

function taggedFields(s: StructModel): FieldModel[] {
  return s.fields.filter((f) => f.taggedVersions !== null).sort((a, b) => a.tag! - b.tag!);
}

function emitReader(ctx: Ctx, s: StructModel, exported: boolean): void {
  const name = exported ? `decode${s.tsName}` : `read${s.tsName}`;
  if (exported) line(ctx, `/** Decodes ${s.tsName} of version \`v\` from \`r\`. */`);
  block(ctx, `${exported ? 'export ' : ''}function ${name}(r: Reader, v: number): ${s.tsName} {`, () => {
    const reach = s.reach;
    if (ctx.flex !== 'true' && ctx.flex !== 'false') line(ctx, `const flexible = ${ctx.flex};`);
    const flex: Cond = ctx.flex === 'true' || ctx.flex === 'false' ? ctx.flex : 'flexible';
    for (const f of s.fields) {
      line(ctx, `let ${local(f)}: ${tsType(f)} = ${defaultExpr(f)};`);
    }
    for (const f of s.fields) {
      if (f.taggedVersions) continue;
      const c = cond(f.versions, reach);
      if (c === 'false') continue;
      if (c === 'true') emitFieldRead(ctx, f, local(f), 'r', flex, reach);
      else block(ctx, `if (${c}) {`, () => emitFieldRead(ctx, f, local(f), 'r', flex, intersect(f.versions, reach)!));
    }
    line(ctx, 'let unknownTaggedFields: TaggedField[] | undefined;');
    if (flex !== 'false') {
      const tagged = taggedFields(s);
      block(ctx, flex === 'true' ? '{' : 'if (flexible) {', () => {
        line(ctx, 'const count = r.uvarint();');
        block(ctx, 'for (let i = 0; i < count; i++) {', () => {
          line(ctx, 'const tag = r.uvarint();');
          line(ctx, 'const size = r.uvarint();');
          for (const f of tagged) {
            const c = and(`tag === ${f.tag}`, cond(f.taggedVersions, reach));
            if (c === 'false') continue;
            block(ctx, `if (${c}) {`, () => {
              line(ctx, `const t = r.sub(size);`);
              emitFieldRead(ctx, f, local(f), 't', 'true', intersect(f.taggedVersions, reach)!, true);
              line(ctx, `t.expectEnd('${s.kafkaName}.${f.name}');`);
              line(ctx, 'continue;');
            });
          }
          line(ctx, '(unknownTaggedFields ??= []).push({ tag, data: r.take(size, \'tagged field\') });');
        });
      });
    }
    line(ctx, `const o: ${s.tsName} = {`);
    for (const f of s.fields) line(ctx, `  ${f.prop}: ${local(f)},`);
    line(ctx, '};');
    line(ctx, 'if (unknownTaggedFields !== undefined) o.unknownTaggedFields = unknownTaggedFields;');
    line(ctx, 'return o;');
  });
  line(ctx, '');
}

function emitWriter(ctx: Ctx, s: StructModel, exported: boolean): void {
  const name = exported ? `encode${s.tsName}` : `write${s.tsName}`;
  if (exported) line(ctx, `/** Encodes ${s.tsName} as version \`v\` into \`w\`. */`);
  block(ctx, `${exported ? 'export ' : ''}function ${name}(w: Writer, v: number, o: ${s.tsName}): void {`, () => {
    const reach = s.reach;
    if (ctx.flex !== 'true' && ctx.flex !== 'false') line(ctx, `const flexible = ${ctx.flex};`);
    const flex: Cond = ctx.flex === 'true' || ctx.flex === 'false' ? ctx.flex : 'flexible';
    const unsupported = (f: FieldModel): string =>
      `throw new EncodeError(\`${s.kafkaName}.${f.name} is set but version \${v} does not carry it\`)`;
    for (const f of s.fields) {
      if (f.taggedVersions) {
        // A tagged field outside its tagged versions is simply absent; it is checked below.
        continue;
      }
      const c = cond(f.versions, reach);
      if (c === 'true') {
        emitFieldWrite(ctx, f, `o.${f.prop}`, 'w', flex, reach);
        continue;
      }
      if (c !== 'false') {
        block(ctx, `if (${c}) {`, () => emitFieldWrite(ctx, f, `o.${f.prop}`, 'w', flex, intersect(f.versions, reach)!), f.ignorable ? '}' : '} else {');
      } else if (!f.ignorable) {
        line(ctx, '{');
      }
      if (!f.ignorable) {
        line(ctx, `  if (${nonDefaultExpr(f, `o.${f.prop}`)}) ${unsupported(f)};`);
        line(ctx, '}');
      }
    }
    const tagged = taggedFields(s);
    for (const f of tagged) {
      if (f.ignorable) continue;
      const c = cond(f.taggedVersions, reach);
      if (c === 'true') continue;
      const notIn = c === 'false' ? '' : `!(${c}) && `;
      line(ctx, `if (${notIn}${nonDefaultExpr(f, `o.${f.prop}`)}) ${unsupported(f)};`);
    }
    if (flex === 'false') return;
    block(ctx, flex === 'true' ? '{' : 'if (flexible) {', () => {
      const present: { f: FieldModel; has: string }[] = [];
      for (const f of tagged) {
        const c = cond(f.taggedVersions, reach);
        if (c === 'false') continue;
        const has = `has${f.tag}`;
        line(ctx, `const ${has} = ${c === 'true' ? '' : `${c} && `}${nonDefaultExpr(f, `o.${f.prop}`)};`);
        present.push({ f, has });
      }
      line(ctx, 'const u = o.unknownTaggedFields;');
      const known = present.map((p) => `(${p.has} ? 1 : 0)`).join(' + ') || '0';
      block(ctx, `if (u === undefined${present.map((p) => ` && !${p.has}`).join('')}) {`, () => line(ctx, 'w.uvarint(0);'), '} else {');
      ctx.indent += '  ';
      line(ctx, `w.uvarint(${known} + (u === undefined ? 0 : u.length));`);
      line(ctx, `let ui = 0;`);
      for (const { f, has } of present) {
        line(ctx, `if (u !== undefined) while (ui < u.length && u[ui]!.tag < ${f.tag}) writeUnknownTaggedField(w, u[ui++]!);`);
        block(ctx, `if (${has}) {`, () => {
          line(ctx, 'const t = new Writer(64);');
          emitFieldWrite(ctx, f, `o.${f.prop}`, 't', 'true', intersect(f.taggedVersions, reach)!, true);
          line(ctx, `writeTaggedField(w, ${f.tag}, t.finishBuffer());`);
        });
      }
      line(ctx, 'if (u !== undefined) while (ui < u.length) writeUnknownTaggedField(w, u[ui++]!);');
      ctx.indent = ctx.indent.slice(2);
      line(ctx, '}');
    });
  });
  line(ctx, '');
}

/** Structs that need a default factory: reachable as a non-array struct field. */
function structsNeedingDefault(msg: MessageModel): Set<StructModel> {
  const need = new Set<StructModel>();
  const visit = (s: StructModel): void => {
    if (need.has(s)) return;
    need.add(s);
    for (const f of s.fields) if (f.type.kind === 'struct') visit(f.type.struct);
  };
  for (const s of msg.structs) for (const f of s.fields) if (f.type.kind === 'struct') visit(f.type.struct);
  return need;
}

function emitDefault(ctx: Ctx, s: StructModel): void {
  block(ctx, `function default${s.tsName}(): ${s.tsName} {`, () => {
    line(ctx, 'return {');
    for (const f of s.fields) line(ctx, `  ${f.prop}: ${defaultExpr(f)},`);
    line(ctx, '};');
  });
  line(ctx, '');
  block(ctx, `function isDefault${s.tsName}(o: ${s.tsName}): boolean {`, () => {
    const checks = s.fields.map((f) => `!(${nonDefaultExpr(f, `o.${f.prop}`)})`);
    checks.push('o.unknownTaggedFields === undefined');
    line(ctx, `return ${checks.join(' &&\n' + ctx.indent + '  ')};`);
  });
  line(ctx, '');
}

function fieldTypeUses(t: FieldType, prim: Primitive): boolean {
  if (t.kind === 'primitive') return t.name === prim;
  if (t.kind === 'array') return t.element.kind === 'primitive' && t.element.name === prim;
  return false;
}

/** Emits interfaces, readers and writers of one message into `lines`. */
export function emitMessage(msg: MessageModel, lines: string[]): { uses: Set<string> } {
  const uses = new Set<string>();
  const defaults = structsNeedingDefault(msg);
  for (const s of msg.structs) {
    const ctx: Ctx = { msg, struct: s, flex: cond(msg.flexibleVersions, s.reach), lines, indent: '' };
    emitInterface(ctx, s);
  }
  for (const s of msg.structs) {
    const ctx: Ctx = { msg, struct: s, flex: cond(msg.flexibleVersions, s.reach), lines, indent: '' };
    if (defaults.has(s)) emitDefault(ctx, s);
    emitReader(ctx, s, s === msg.root);
    emitWriter(ctx, s, s === msg.root);
    for (const f of s.fields) {
      if (fieldTypeUses(f.type, 'uuid')) uses.add('ZERO_UUID');
      if (fieldTypeUses(f.type, 'bytes') || fieldTypeUses(f.type, 'records')) uses.add('EMPTY_BYTES');
      if (fieldTypeUses(f.type, 'records')) uses.add('Records');
    }
  }
  return { uses };
}
