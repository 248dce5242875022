// An activity's details as a readable tree: objects as labelled lists, arrays of like objects
// (an order's products) as tables, values as text.
import type { JSX } from 'preact';

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

const isObject = (v: unknown): v is Record<string, Json> => typeof v === 'object' && v !== null && !Array.isArray(v);
const isScalar = (v: unknown) => v === null || typeof v !== 'object';

function text(v: Json): string {
  if (v === null) return 'null';
  return typeof v === 'string' ? v : String(v);
}

/** The columns of an array that is best read as a table: at least two items, every item an
 * object of scalar values, the same keys in all. */
export function tableColumns(items: Json[]): string[] | null {
  if (items.length < 2 || !items.every(isObject)) return null;
  const first = Object.keys(items[0] as object);
  if (first.length === 0 || first.length > 12) return null;
  const same = (items as Record<string, Json>[]).every((o) => {
    const keys = Object.keys(o);
    return keys.length === first.length && keys.every((k, i) => k === first[i] && isScalar(o[k]));
  });
  return same ? first : null;
}

function Value({ value, label }: { value: Json; label: string }): JSX.Element {
  if (Array.isArray(value)) {
    const columns = tableColumns(value);
    if (columns) {
      return (
        <div class="tree-table" tabIndex={0} role="region" aria-label={`${label} (${value.length})`}>
          <table>
            <caption>
              {label} ({value.length.toLocaleString()})
            </caption>
            <thead>
              <tr>
                <th scope="col">#</th>
                {columns.map((c) => (
                  <th scope="col" key={c}>
                    {c}
                  </th>
                ))}
              </tr>
            </thead>
            <tbody>
              {(value as Record<string, Json>[]).map((row, i) => (
                <tr key={i}>
                  <td>{i + 1}</td>
                  {columns.map((c) => (
                    <td key={c}>{text(row[c])}</td>
                  ))}
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      );
    }
    return (
      <ol class="tree" start={1}>
        {value.map((item, i) => (
          <li key={i}>
            <Value value={item} label={`${label}[${i + 1}]`} />
          </li>
        ))}
      </ol>
    );
  }
  if (isObject(value)) {
    return (
      <dl class="tree">
        {Object.entries(value).map(([k, v]) => (
          <div class="tree-entry" key={k}>
            <dt>{k}</dt>
            <dd>
              <Value value={v} label={k} />
            </dd>
          </div>
        ))}
      </dl>
    );
  }
  return <span class={`tree-value tree-${value === null ? 'null' : typeof value}`}>{text(value)}</span>;
}

export function DetailsTree({ details, label }: { details: unknown; label: string }) {
  return (
    <div class="details-tree">
      <Value value={details as Json} label={label} />
    </div>
  );
}
