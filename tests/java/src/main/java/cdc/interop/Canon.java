package cdc.interop;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.math.BigDecimal;
import java.nio.ByteBuffer;
import java.time.Instant;
import java.time.LocalDate;
import java.time.LocalDateTime;
import java.time.LocalTime;
import java.time.ZoneOffset;
import java.util.HexFormat;
import java.util.Map;
import org.apache.avro.generic.GenericFixed;
import org.apache.avro.util.Utf8;
import org.apache.kafka.connect.data.Date;
import org.apache.kafka.connect.data.Decimal;
import org.apache.kafka.connect.data.Field;
import org.apache.kafka.connect.data.Schema;
import org.apache.kafka.connect.data.Struct;
import org.apache.kafka.connect.data.Time;
import org.apache.kafka.connect.data.Timestamp;

/**
 * The canonical text of a value as a Java library holds it, so the Rust side can compare it
 * exactly: {@code <kind>:<text>} by the value's Java class.
 *
 * <pre>
 * Byte/Short/Integer/Long   int8:N int16:N int32:N int64:N
 * Float/Double              float32:HEX8 float64:HEX16 (the IEEE bits)
 * Boolean, String           boolean:true, string:TEXT
 * byte[]/ByteBuffer/fixed   bytes:HEX
 * BigDecimal                decimal:PLAIN (toPlainString: the scale shows as digits)
 * java.util.Date            date:EPOCH_DAYS (Connect Date), time-ms:MS (Time), timestamp-ms:MS
 * LocalDate                 date:EPOCH_DAYS
 * LocalTime                 time-us:MICROS_OF_DAY
 * Instant                   instant-us:MICROS since the epoch
 * LocalDateTime             local-us:MICROS since 1970-01-01T00:00 of the wall clock
 * null                      JSON null; a Struct is an object of its fields
 * </pre>
 */
final class Canon {
    static final ObjectMapper JSON = new ObjectMapper();
    static final JsonNodeFactory NODES = JsonNodeFactory.instance;
    private static final HexFormat HEX = HexFormat.of();

    private Canon() {}

    static JsonNode value(Object v, Schema schema) {
        if (v == null) return NODES.nullNode();
        if (v instanceof Struct s) {
            ObjectNode o = NODES.objectNode();
            for (Field f : s.schema().fields()) o.set(f.name(), value(s.get(f), f.schema()));
            return o;
        }
        if (v instanceof java.util.Date d) {
            String name = schema == null ? null : schema.name();
            if (Date.LOGICAL_NAME.equals(name)) {
                long ms = d.getTime();
                return NODES.textNode(ms % 86_400_000L == 0 ? "date:" + Math.floorDiv(ms, 86_400_000L) : "date-not-midnight-ms:" + ms);
            }
            if (Time.LOGICAL_NAME.equals(name)) return NODES.textNode("time-ms:" + d.getTime());
            if (Timestamp.LOGICAL_NAME.equals(name)) return NODES.textNode("timestamp-ms:" + d.getTime());
            return NODES.textNode("java-date-ms:" + d.getTime());
        }
        return NODES.textNode(scalar(v));
    }

    static String scalar(Object v) {
        if (v instanceof Byte b) return "int8:" + b;
        if (v instanceof Short s) return "int16:" + s;
        if (v instanceof Integer i) return "int32:" + i;
        if (v instanceof Long l) return "int64:" + l;
        if (v instanceof Float f) return String.format("float32:%08x", Float.floatToRawIntBits(f));
        if (v instanceof Double d) return String.format("float64:%016x", Double.doubleToRawLongBits(d));
        if (v instanceof Boolean b) return "boolean:" + b;
        if (v instanceof String s) return "string:" + s;
        if (v instanceof Utf8 s) return "string:" + s;
        if (v instanceof byte[] b) return "bytes:" + HEX.formatHex(b);
        if (v instanceof ByteBuffer b) {
            ByteBuffer d = b.duplicate();
            byte[] a = new byte[d.remaining()];
            d.get(a);
            return "bytes:" + HEX.formatHex(a);
        }
        if (v instanceof GenericFixed f) return "bytes:" + HEX.formatHex(f.bytes());
        if (v instanceof BigDecimal d) return "decimal:" + d.toPlainString();
        if (v instanceof LocalDate d) return "date:" + d.toEpochDay();
        if (v instanceof LocalTime t) return "time-us:" + t.toNanoOfDay() / 1000;
        if (v instanceof Instant i) return "instant-us:" + micros(i.getEpochSecond(), i.getNano());
        if (v instanceof LocalDateTime t) return "local-us:" + micros(t.toEpochSecond(ZoneOffset.UTC), t.getNano());
        return "unknown-" + v.getClass().getName() + ":" + v;
    }

    /** Microseconds of an epoch second plus nanoseconds (ChronoUnit.between overflows far from 1970). */
    private static long micros(long epochSecond, int nano) {
        return epochSecond * 1_000_000L + nano / 1000;
    }

    /** The Connect schema as JsonConverter's reader understood it (not as the bytes spelt it). */
    static JsonNode schema(Schema s) {
        ObjectNode o = NODES.objectNode();
        o.put("type", s.type().getName());
        if (s.name() != null) o.put("name", s.name());
        if (s.version() != null) o.put("version", s.version());
        o.put("optional", s.isOptional());
        if (s.parameters() != null && !s.parameters().isEmpty()) {
            ObjectNode p = NODES.objectNode();
            for (Map.Entry<String, String> e : s.parameters().entrySet()) p.put(e.getKey(), e.getValue());
            o.set("parameters", p);
        }
        if (Decimal.LOGICAL_NAME.equals(s.name())) o.put("decimal_scale", Integer.parseInt(s.parameters().get(Decimal.SCALE_FIELD)));
        if (s.type() == Schema.Type.STRUCT) {
            var fields = NODES.arrayNode();
            for (Field f : s.fields()) {
                ObjectNode fo = (ObjectNode) schema(f.schema());
                fo.put("field", f.name());
                fields.add(fo);
            }
            o.set("fields", fields);
        }
        return o;
    }

    static ObjectNode error(Throwable e) {
        ObjectNode o = NODES.objectNode();
        o.put("ok", false);
        StringBuilder msg = new StringBuilder(e.toString());
        for (Throwable c = e.getCause(); c != null; c = c.getCause()) msg.append(" / caused by ").append(c);
        o.put("error", msg.toString());
        return o;
    }
}
