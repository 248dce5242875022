// The signed-in user's calls to the API: the bearer token, and the notice shown while a busy
// service (429/503) is waited for.
import type { User } from 'oidc-client-ts';
import { useState } from 'preact/hooks';

import { SignInRequired, call, type CallOptions } from '../api';
import { WORDS, type Lang } from '../i18n';

export interface Api {
  /** `call` with the user's token, telling `notice` of each wait; throws SignInRequired once
   * the token has expired. */
  get: <T>(path: string, init?: RequestInit, options?: CallOptions) => Promise<T>;
  /** "The service is busy…", while a call waits; '' otherwise. */
  notice: string;
  clearNotice: () => void;
}

export function useApi(user: User, lang: Lang): Api {
  const [notice, setNotice] = useState('');

  const token = (): string => {
    if (user.expired) throw new SignInRequired('expired');
    return user.access_token;
  };
  const onWait = (s: number) => setNotice(WORDS[lang].busy(s));

  const get = <T>(path: string, init: RequestInit = {}, options: CallOptions = {}) => call<T>(path, token(), init, { onWait, ...options });

  return { get, notice, clearNotice: () => setNotice('') };
}
