/** `node -r pathwise/register app.js`: with DD_DATA_STREAMS_ENABLED=true, instruments the clients the app requires. */
import { enableAutoInstrumentation } from './auto.js'

enableAutoInstrumentation()
