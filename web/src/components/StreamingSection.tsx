// Streaming: the tenant's destinations, their state and how far delivery has come, with Pause /
// Resume. Shown to GlobalAdmin and AccountAdmin only (others get 403, and no section).
import type { Destination } from '../api';
import type { ChangeNotice, Destinations } from '../hooks/useDestinations';
import type { Lang, Words } from '../i18n';
import { formatDateTime } from '../period';

interface Props {
  destinations: Destinations;
  t: Words;
  lang: Lang;
  zone: string;
}

export function StreamingSection({ destinations, t, lang, zone }: Props) {
  const { state, notice } = destinations;
  if (state.state === 'loading' || state.state === 'hidden') return null;
  return (
    <section class="streaming" aria-labelledby="streaming-heading">
      <h2 id="streaming-heading">{t.streaming}</h2>
      <p class="intro">{t.streamingIntro}</p>
      {state.state === 'error' ? (
        <p class="error" role="alert">
          <strong>{t.errorTitle}:</strong> {state.message}
        </p>
      ) : state.list.items.length === 0 ? (
        <>
          <p>{t.noDestinations}</p>
          <p class="streaming-hint">{t.destinationsHint(state.list.maxDestinations)}</p>
        </>
      ) : (
        <table class="destinations" aria-labelledby="streaming-heading">
          <thead>
            <tr>
              <th scope="col">{t.destinationName}</th>
              <th scope="col">{t.destinationType}</th>
              <th scope="col">{t.destinationWhere}</th>
              <th scope="col">{t.destinationState}</th>
              <th scope="col" class="seq-col">
                {t.destinationDelivered}
              </th>
              <th scope="col">{t.destinationLag}</th>
              <th scope="col">
                <span class="sr-only">{t.destinationActions}</span>
              </th>
            </tr>
          </thead>
          <tbody>
            {state.list.items.map((d) => (
              <DestinationRow key={d.id} d={d} t={t} lang={lang} zone={zone} destinations={destinations} />
            ))}
          </tbody>
        </table>
      )}
      <ChangeStatus notice={notice} t={t} />
    </section>
  );
}

function DestinationRow({ d, t, lang, zone, destinations }: { d: Destination; t: Words; lang: Lang; zone: string; destinations: Destinations }) {
  const paused = d.state === 'paused';
  return (
    <tr data-destination={d.id}>
      <th scope="row">{d.name}</th>
      <td>{typeName(d, t)}</td>
      <td class="where">{where(d)}</td>
      <td>
        <span class={`dest-state ${d.state}`}>{stateText(d, t, (iso) => formatDateTime(iso, lang, zone))}</span>
      </td>
      <td class="seq-col">{t.delivered(d.deliveredPosition, d.headPosition)}</td>
      <td>{d.lagPositions === 0 ? t.upToDate : t.lag(d.lagPositions, d.lagSeconds)}</td>
      <td>
        <button
          type="button"
          class="secondary"
          aria-label={paused ? t.resumeNamed(d.name) : t.pauseNamed(d.name)}
          disabled={destinations.changing !== null}
          onClick={() => (paused ? destinations.resume(d.id) : destinations.pause(d.id))}
        >
          {paused ? t.resume : t.pause}
        </button>
      </td>
    </tr>
  );
}

function typeName(d: Destination, t: Words): string {
  if (d.type === 'https') return t.destinationTypes[d.format === 'splunkHec' ? 'splunkHec' : 'webhook'];
  return t.destinationTypes[d.type];
}

/** Where it delivers: the URL, the bucket and prefix, or the bus. */
function where(d: Destination): string {
  if (d.type === 's3') return d.prefix ? `s3://${d.bucket ?? ''}/${d.prefix}` : `s3://${d.bucket ?? ''}`;
  if (d.type === 'eventBridge') return d.eventBusArn ?? '';
  return d.url ?? '';
}

function stateText(d: Destination, t: Words, time: (iso: string) => string): string {
  if (d.state === 'failing') return d.failing ? t.stateFailingSince(time(d.failing.since), d.failing.lastError) : t.stateFailing;
  if (d.state === 'paused') {
    if (!d.paused) return t.statePaused;
    return d.paused.by === 'partner' ? t.statePausedByPartner(time(d.paused.at)) : t.statePausedByDelivery(time(d.paused.at));
  }
  return t.stateActive;
}

/** The live region under the table: a destination changed meanwhile, or why a change failed. */
function ChangeStatus({ notice, t }: { notice: ChangeNotice; t: Words }) {
  return (
    <p class={notice?.kind === 'failed' ? 'streaming-status error' : 'streaming-status'} role="status">
      {notice?.kind === 'changed' ? t.destinationChanged(notice.name) : notice?.kind === 'failed' ? t.destinationChangeFailed(notice.message) : ''}
    </p>
  );
}
