// The page's words in English and Traditional Chinese. The Traditional Chinese column and table
// names are Partner Center's own (活動記錄, 從, 到, 日期 / 時間, 受影響客戶, 動作, 合作夥伴使用者,
// 匯出記錄, 訂閱).

export type Lang = 'en' | 'zh-TW';
export const LANGS: Lang[] = ['en', 'zh-TW'];
export const LANG_NAMES: Record<Lang, string> = { en: 'English', 'zh-TW': '繁體中文' };

/** A duration in at most two whole units, largest first: [[1, 'h'], [5, 'min']]. */
function durationParts(seconds: number): [number, 'd' | 'h' | 'min' | 's'][] {
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return [[s, 's']];
  if (s < 3600) return [[Math.floor(s / 60), 'min']];
  const [big, bigUnit, small, smallUnit] =
    s < 86400 ? [Math.floor(s / 3600), 'h' as const, Math.floor((s % 3600) / 60), 'min' as const] : [Math.floor(s / 86400), 'd' as const, Math.floor((s % 86400) / 3600), 'h' as const];
  return small > 0 ? [[big, bigUnit], [small, smallUnit]] : [[big, bigUnit]];
}

const duration = (seconds: number, units: Record<'d' | 'h' | 'min' | 's', string>, lang: string) =>
  durationParts(seconds)
    .map(([n, u]) => `${n.toLocaleString(lang)} ${units[u]}`)
    .join(' ');

const en = {
  title: 'Activity log',
  intro: 'Every action taken on your customers’ accounts, newest first.',
  signIn: 'Sign in',
  signOut: 'Sign out',
  signedInAs: 'Signed in as',
  signInPrompt: 'Sign in with your organization account to see the activity log.',
  sessionEnded: 'Your session has ended. Sign in again to go on.',
  signInAgain: 'Sign in again',
  signInFailed: 'Sign-in did not complete',
  noAccess: 'You don’t have access to the activity log.',
  noAccessHint: 'Viewing it needs one of the roles Global admin, Billing admin, User management admin, Admin agent, Sales agent or Helpdesk agent. Ask your global admin.',
  language: 'Language',
  period: 'Period',
  from: 'From',
  to: 'To',
  quick: 'Quick ranges',
  last24h: 'Last 24 hours',
  last7d: 'Last 7 days',
  last30d: 'Last 30 days',
  last90d: 'Last 90 days',
  timeZone: 'Time zone',
  browserZone: '(this browser)',
  filters: 'Filters',
  customer: 'Customer',
  customerHint: 'Customer ID',
  action: 'Action',
  partnerUser: 'Partner user',
  status: 'Status',
  anyStatus: 'Any',
  apply: 'Apply',
  clear: 'Clear filters',
  dateTime: 'Date-Time',
  affectedCustomer: 'Affected customer',
  showDetails: 'Show details',
  subscriptions: 'Subscriptions',
  loading: 'Loading…',
  loadMore: 'Load more',
  rowsLoaded: (n: number) => `${n.toLocaleString('en')} ${n === 1 ? 'activity' : 'activities'} loaded`,
  allLoaded: 'all of the period',
  moreAvailable: 'more available',
  none: 'No activities in this period.',
  fromAfterTo: 'From must be on or before To.',
  details: 'Details',
  noDetails: 'No details were recorded.',
  loadingDetails: 'Loading details…',
  format: 'Format',
  exportLog: 'Export log',
  exporting: (n: number) => `Exporting… ${n.toLocaleString('en')} rows so far`,
  exportQueued: 'Export queued…',
  exportReady: (n: number) => `Export ready: ${n.toLocaleString('en')} rows. Your download has started.`,
  downloadAgain: 'Download again',
  exportFailed: 'Export failed',
  busy: (s: number) => `The service is busy; trying again in ${s} s…`,
  errorTitle: 'Something went wrong',
  sequence: 'Sequence',
  recordedBy: 'Recorded by',
  feedPosition: 'Feed position',
  feedPositionPending: 'not yet given',
  hash: 'Hash',
  previousHash: 'Previous hash',
  verify: 'Verify',
  verifying: 'Verifying…',
  failedVerification: '(failed verification)',
  verified: (n: number, first: number, last: number, checkpoint: number, reaches: boolean) =>
    `Verified: ${n.toLocaleString('en')} ${n === 1 ? `activity (sequence ${first}) matches its hash` : `activities (sequences ${first}–${last}) match their hashes`}` +
    (reaches ? ` and the signed checkpoint at ${checkpoint}.` : `; the signed checkpoint is at ${checkpoint} (newer activities are not loaded).`),
  notInView: (n: number) =>
    ` ${n.toLocaleString('en')} ${n === 1 ? 'sequence' : 'sequences'} between them ${n === 1 ? 'is' : 'are'} not in this view (outside its period or filters); the service's chain holds ${n === 1 ? 'it' : 'them'}, linked.`,
  expiredBetween: (n: number) =>
    ` ${n.toLocaleString('en')} ${n === 1 ? 'sequence' : 'sequences'} between them expired (older than the signed retention).`,
  notChecked: (n: number) =>
    ` ${n.toLocaleString('en')} ${n === 1 ? 'sequence' : 'sequences'} between them ${n === 1 ? 'was' : 'were'} not checked: too many for the page (activity-log-verify --api checks the whole chain).`,
  verifyNothing: 'Nothing to verify: no activity of this customer is loaded.',
  verifyUnchained: (id: string) => `Verification failed: activity ${id} has no sequence or hash: its place in the chain was removed.`,
  verifyAltered: (id: string, sequence: number) => `Verification failed: activity ${id} (sequence ${sequence}) was altered.`,
  verifyMissing: (from: number, to: number) =>
    from === to
      ? `Verification failed: sequence ${from} is missing between the loaded activities.`
      : `Verification failed: sequences ${from}–${to} are missing between the loaded activities.`,
  pastCheckpoint: (n: number) =>
    ` ${n.toLocaleString('en')} loaded ${n === 1 ? 'activity was' : 'activities were'} recorded after the checkpoint was signed and ${n === 1 ? 'was' : 'were'} not checked.`,
  verifyOutOfOrder: (id: string, sequence: number) => `Verification failed: activity ${id} (sequence ${sequence}) is out of order.`,
  verifyBadSignature: "Verification failed: the checkpoint's signature is invalid.",
  verifyOtherCustomer: 'Verification failed: the checkpoint is for another customer.',
  verifyNoCheckpoint: 'Verification failed: there is no signed checkpoint for this customer.',
  verifyHistoryChanged: (since: string) => `Verification failed: history changed since ${since}. The log no longer extends the checkpoint verified in this browser then.`,
  verifyRefused: 'Verification failed: the service refused to sign this customer’s log, because it no longer extends what the service signed before (it was changed in storage).',
  verifyError: (message: string) => `Verification could not be completed: ${message}`,
  streaming: 'Streaming',
  streamingIntro: 'Destinations that receive every activity of your log as it is recorded.',
  destinationName: 'Name',
  destinationType: 'Type',
  destinationWhere: 'Where',
  destinationState: 'State',
  destinationDelivered: 'Delivered',
  destinationLag: 'Lag',
  destinationActions: 'Pause or resume',
  destinationTypes: { s3: 'Amazon S3', webhook: 'HTTPS webhook', splunkHec: 'Splunk HEC', eventBridge: 'Amazon EventBridge' },
  stateActive: 'Active',
  stateFailing: 'Failing',
  stateFailingSince: (since: string, error: string) => `Failing since ${since}: ${error}`,
  statePaused: 'Paused',
  statePausedByPartner: (since: string) => `Paused by an admin since ${since}`,
  statePausedByDelivery: (since: string) => `Paused by delivery since ${since}`,
  delivered: (position: number, head: number) => `${position.toLocaleString('en')} of ${head.toLocaleString('en')}`,
  upToDate: 'up to date',
  lag: (n: number, seconds: number | null) =>
    `${n.toLocaleString('en')} ${n === 1 ? 'activity' : 'activities'}` + (seconds ? `, ${duration(seconds, { d: 'd', h: 'h', min: 'min', s: 's' }, 'en')}` : ''),
  pause: 'Pause',
  resume: 'Resume',
  pauseNamed: (name: string) => `Pause ${name}`,
  resumeNamed: (name: string) => `Resume ${name}`,
  noDestinations: 'No destinations yet.',
  destinationsHint: (n: number) => `Up to ${n} can be added through the API (README, “Streaming”).`,
  destinationChanged: (name: string) => `${name} was changed meanwhile; the list now shows it as it is.`,
  destinationChangeFailed: (message: string) => `The change did not go through: ${message}`,
  statusNames: { succeeded: 'Succeeded', failed: 'Failed', inProgress: 'In progress' } as Record<string, string>,
};

export type Words = typeof en;

const zhTW: Words = {
  title: '活動記錄',
  intro: '在您客戶帳戶上執行的每個動作，最新的在前。',
  signIn: '登入',
  signOut: '登出',
  signedInAs: '登入身分',
  signInPrompt: '請使用您的組織帳戶登入以檢視活動記錄。',
  sessionEnded: '您的工作階段已結束。請重新登入以繼續。',
  signInAgain: '重新登入',
  signInFailed: '登入未完成',
  noAccess: '您沒有活動記錄的存取權。',
  noAccessHint: '檢視活動記錄需要下列其中一個角色：全域管理員、帳務管理員、使用者管理管理員、管理員代理人、銷售代理人或技術服務人員。請洽詢您的全域管理員。',
  language: '語言',
  period: '期間',
  from: '從',
  to: '到',
  quick: '快速範圍',
  last24h: '過去 24 小時',
  last7d: '過去 7 天',
  last30d: '過去 30 天',
  last90d: '過去 90 天',
  timeZone: '時區',
  browserZone: '（此瀏覽器）',
  filters: '篩選',
  customer: '客戶',
  customerHint: '客戶識別碼',
  action: '動作',
  partnerUser: '合作夥伴使用者',
  status: '狀態',
  anyStatus: '全部',
  apply: '套用',
  clear: '清除篩選',
  dateTime: '日期 / 時間',
  affectedCustomer: '受影響客戶',
  showDetails: '顯示詳細資料',
  subscriptions: '訂閱',
  loading: '正在載入…',
  loadMore: '載入更多',
  rowsLoaded: (n: number) => `已載入 ${n.toLocaleString('zh-TW')} 筆活動`,
  allLoaded: '已是此期間的全部',
  moreAvailable: '還有更多',
  none: '此期間沒有活動。',
  fromAfterTo: '「從」必須早於或等於「到」。',
  details: '詳細資料',
  noDetails: '沒有記錄詳細資料。',
  loadingDetails: '正在載入詳細資料…',
  format: '格式',
  exportLog: '匯出記錄',
  exporting: (n: number) => `正在匯出… 已處理 ${n.toLocaleString('zh-TW')} 筆`,
  exportQueued: '匯出已排入佇列…',
  exportReady: (n: number) => `匯出完成：${n.toLocaleString('zh-TW')} 筆。已開始下載。`,
  downloadAgain: '再次下載',
  exportFailed: '匯出失敗',
  busy: (s: number) => `服務忙碌中，${s} 秒後重試…`,
  errorTitle: '發生錯誤',
  sequence: '序號',
  recordedBy: '記錄者',
  feedPosition: '串流位置',
  feedPositionPending: '尚未指派',
  hash: '雜湊',
  previousHash: '前一筆雜湊',
  verify: '驗證',
  verifying: '正在驗證…',
  failedVerification: '（未通過驗證）',
  verified: (n: number, first: number, last: number, checkpoint: number, reaches: boolean) =>
    `已驗證：${n.toLocaleString('zh-TW')} 筆活動（序號 ${n === 1 ? first : `${first}–${last}`}）` +
    (reaches ? `與其雜湊及序號 ${checkpoint} 的已簽署檢查點相符。` : `與其雜湊相符；已簽署的檢查點位於序號 ${checkpoint}（較新的活動尚未載入）。`),
  notInView: (n: number) => `其間有 ${n.toLocaleString('zh-TW')} 個序號不在此檢視中（在其期間或篩選條件之外），服務的鏈中仍保有且相連。`,
  expiredBetween: (n: number) => `其間有 ${n.toLocaleString('zh-TW')} 個序號已超過簽署的保留期而到期。`,
  notChecked: (n: number) => `其間有 ${n.toLocaleString('zh-TW')} 個序號未檢查：數量超過頁面可處理的範圍（activity-log-verify --api 會檢查整條鏈）。`,
  verifyNothing: '沒有可驗證的項目：尚未載入此客戶的任何活動。',
  verifyUnchained: (id: string) => `驗證失敗：活動 ${id} 沒有序號或雜湊：它在鏈中的位置已被移除。`,
  verifyAltered: (id: string, sequence: number) => `驗證失敗：活動 ${id}（序號 ${sequence}）已遭竄改。`,
  verifyMissing: (from: number, to: number) => `驗證失敗：已載入的活動之間缺少序號 ${from === to ? from : `${from}–${to}`}。`,
  pastCheckpoint: (n: number) => `另有 ${n.toLocaleString('zh-TW')} 筆已載入的活動是在檢查點簽署後記錄的，未予檢查。`,
  verifyOutOfOrder: (id: string, sequence: number) => `驗證失敗：活動 ${id}（序號 ${sequence}）的順序錯亂。`,
  verifyBadSignature: '驗證失敗：檢查點的簽章無效。',
  verifyOtherCustomer: '驗證失敗：檢查點屬於其他客戶。',
  verifyNoCheckpoint: '驗證失敗：此客戶沒有已簽署的檢查點。',
  verifyHistoryChanged: (since: string) => `驗證失敗：自 ${since} 以來記錄已被變更。記錄不再延續當時在此瀏覽器驗證的檢查點。`,
  verifyRefused: '驗證失敗：服務拒絕簽署此客戶的記錄，因為它已不再延續服務先前簽署的內容（儲存內容遭到變更）。',
  verifyError: (message: string) => `無法完成驗證：${message}`,
  streaming: '串流',
  streamingIntro: '這些目的地會在您記錄中的每筆活動被記錄時即時收到該活動。',
  destinationName: '名稱',
  destinationType: '類型',
  destinationWhere: '位置',
  destinationState: '狀態',
  destinationDelivered: '已傳遞',
  destinationLag: '延遲',
  destinationActions: '暫停或繼續',
  destinationTypes: { s3: 'Amazon S3', webhook: 'HTTPS Webhook', splunkHec: 'Splunk HEC', eventBridge: 'Amazon EventBridge' },
  stateActive: '使用中',
  stateFailing: '失敗中',
  stateFailingSince: (since: string, error: string) => `失敗中（自 ${since} 起）：${error}`,
  statePaused: '已暫停',
  statePausedByPartner: (since: string) => `已暫停（由管理員於 ${since} 暫停）`,
  statePausedByDelivery: (since: string) => `已暫停（因傳遞持續失敗，自 ${since} 起自動暫停）`,
  delivered: (position: number, head: number) => `${position.toLocaleString('zh-TW')} / ${head.toLocaleString('zh-TW')}`,
  upToDate: '已是最新',
  lag: (n: number, seconds: number | null) =>
    `${n.toLocaleString('zh-TW')} 筆活動` + (seconds ? `，${duration(seconds, { d: '天', h: '小時', min: '分鐘', s: '秒' }, 'zh-TW')}` : ''),
  pause: '暫停',
  resume: '繼續',
  pauseNamed: (name: string) => `暫停 ${name}`,
  resumeNamed: (name: string) => `繼續 ${name}`,
  noDestinations: '尚無目的地。',
  destinationsHint: (n: number) => `最多可透過 API 新增 ${n} 個目的地（請參閱 README 的「Streaming」一節）。`,
  destinationChanged: (name: string) => `「${name}」在此期間已有變更；清單已更新為目前的狀態。`,
  destinationChangeFailed: (message: string) => `變更未完成：${message}`,
  statusNames: { succeeded: '成功', failed: '失敗', inProgress: '進行中' },
};

export const WORDS: Record<Lang, Words> = { en, 'zh-TW': zhTW };

/** The page's language for a browser language list (navigator.languages): Traditional Chinese
 * for zh-TW, zh-HK, zh-MO and zh-Hant; English otherwise. */
export function langFromBrowser(languages: readonly string[]): Lang {
  for (const l of languages) {
    const tag = l.toLowerCase();
    if (/^zh-(tw|hk|mo|hant)\b/.test(tag)) return 'zh-TW';
    if (tag === 'zh' || tag.startsWith('zh-')) return 'zh-TW';
    if (tag === 'en' || tag.startsWith('en-')) return 'en';
  }
  return 'en';
}
