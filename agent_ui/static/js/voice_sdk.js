// The browser phone (only where the city enables HOTLINE_TWILIO_BROWSER_PHONE): Twilio's Voice JavaScript SDK,
// vendored from npm (@twilio/voice-sdk 2.18.5, static/vendor/twilio-voice-sdk/, Apache-2.0), registers this agent
// (identity agent-<id>, from GET /api/phone/voice-token) so that 接听下一个 and 回拨 ring here. A call put through by
// the server is the one the agent asked for, so it is accepted at once; the token is renewed before it expires.
import { api } from './api.js';
import { toast } from './dom.js';

const SDK = '/static/vendor/twilio-voice-sdk/twilio.min.js';

function loadSdk() {
  if (window.Twilio && window.Twilio.Device) return Promise.resolve(window.Twilio);
  return new Promise((resolve, reject) => {
    const script = document.createElement('script');
    script.src = SDK;
    script.onload = () => resolve(window.Twilio);
    script.onerror = () => reject(new Error('浏览器电话组件加载失败'));
    document.head.appendChild(script);
  });
}

export async function startBrowserPhone(token, statusEl) {
  const say = (text) => { if (statusEl) statusEl.textContent = text; };
  let Twilio;
  try {
    Twilio = await loadSdk();
  } catch (err) {
    toast(err.message, 'error');
    return null;
  }
  const device = new Twilio.Device(token.token, { codecPreferences: ['opus', 'pcmu'], closeProtection: '通话中，确定离开？' });
  device.on('registered', () => say('浏览器电话：已就绪'));
  device.on('error', (err) => { say('浏览器电话：出错'); toast(`浏览器电话出错：${err.message}`, 'error'); });
  device.on('incoming', (call) => {
    say('浏览器电话：通话中');
    call.on('disconnect', () => say('浏览器电话：已就绪'));
    call.accept();
  });
  device.on('tokenWillExpire', async () => {
    try {
      const fresh = await api('/api/phone/voice-token');
      device.updateToken(fresh.token);
    } catch (err) {
      toast(`浏览器电话续期失败：${err.message}`, 'error');
    }
  });
  say('浏览器电话：连接中…');
  await device.register();
  return device;
}
