import { createPinia } from 'pinia'
import { createApp } from 'vue'
import { version } from '../../package.json'
import App from './App.vue'
import { createHostBridge } from './host/bridge.ts'
import { readAllowedOrigin } from './host/origin.ts'
import { useSessionStore } from './stores/session.ts'
import './styles.css'

const pinia = createPinia()
const app = createApp(App).use(pinia)
const bridge = createHostBridge({ win: window, allowedOrigin: readAllowedOrigin(document) })
void useSessionStore(pinia).start(bridge, version)
app.mount('#app')
