package cdc.interop;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.PrintStream;
import java.math.BigDecimal;
import java.nio.charset.StandardCharsets;
import java.time.Instant;
import java.time.LocalDate;
import java.time.LocalTime;
import java.time.ZoneOffset;
import java.util.List;
import java.util.Map;
import org.apache.kafka.connect.data.Date;
import org.apache.kafka.connect.data.Decimal;
import org.apache.kafka.connect.data.Schema;
import org.apache.kafka.connect.data.SchemaAndValue;
import org.apache.kafka.connect.data.SchemaBuilder;
import org.apache.kafka.connect.data.Struct;
import org.apache.kafka.connect.data.Time;
import org.apache.kafka.connect.data.Timestamp;
import org.apache.kafka.connect.json.JsonConverter;

/** Kafka Connect's JsonConverter with schemas.enable=true, as a Connect worker configures it. */
final class ConnectJson {
    private static final String TOPIC = "interop";

    private ConnectJson() {}

    static JsonConverter converter(boolean isKey) {
        JsonConverter c = new JsonConverter();
        c.configure(Map.of("schemas.enable", "true"), isKey);
        return c;
    }

    /** For each document: the schema and value toConnectData understood, and fromConnectData's bytes. */
    static void read(List<String> lines, PrintStream out) throws Exception {
        JsonConverter converter = converter(false);
        for (String line : lines) {
            ObjectNode o = Canon.NODES.objectNode();
            try {
                byte[] bytes = line.equals("null") ? null : line.getBytes(StandardCharsets.UTF_8);
                SchemaAndValue sv = converter.toConnectData(TOPIC, bytes);
                o.put("ok", true);
                o.set("schema", sv.schema() == null ? Canon.NODES.nullNode() : Canon.schema(sv.schema()));
                o.set("value", Canon.value(sv.value(), sv.schema()));
                byte[] again = converter.fromConnectData(TOPIC, sv.schema(), sv.value());
                o.put("json", again == null ? null : new String(again, StandardCharsets.UTF_8));
            } catch (Exception e) {
                o = Canon.error(e);
            }
            out.println(Canon.JSON.writeValueAsString(o));
        }
    }

    static final Schema KEY = SchemaBuilder.struct().name("connect_types.Key")
            .field("id", Schema.INT32_SCHEMA)
            .build();

    /** Every Connect type, each optional, after a required key column. */
    static final Schema VALUE = SchemaBuilder.struct().name("connect_types.Value")
            .field("id", Schema.INT32_SCHEMA)
            .field("i8", Schema.OPTIONAL_INT8_SCHEMA)
            .field("i16", Schema.OPTIONAL_INT16_SCHEMA)
            .field("i32", Schema.OPTIONAL_INT32_SCHEMA)
            .field("i64", Schema.OPTIONAL_INT64_SCHEMA)
            .field("f32", Schema.OPTIONAL_FLOAT32_SCHEMA)
            .field("f64", Schema.OPTIONAL_FLOAT64_SCHEMA)
            .field("flag", Schema.OPTIONAL_BOOLEAN_SCHEMA)
            .field("text", Schema.OPTIONAL_STRING_SCHEMA)
            .field("bin", Schema.OPTIONAL_BYTES_SCHEMA)
            .field("dec", Decimal.builder(2).optional().build())
            .field("big", Decimal.builder(0).parameter("connect.decimal.precision", "20").optional().build())
            .field("day", Date.builder().optional().build())
            .field("tod", Time.builder().optional().build())
            .field("ts", Timestamp.builder().optional().build())
            .build();

    /** A struct inside the value: not a flat row; readers of rows must refuse it by name. */
    static final Schema NESTED = SchemaBuilder.struct().name("connect_types_nested.Value")
            .field("id", Schema.INT32_SCHEMA)
            .field("inner", SchemaBuilder.struct().name("inner").field("x", Schema.INT32_SCHEMA).optional().build())
            .build();

    private static java.util.Date day(int y, int m, int d) {
        return java.util.Date.from(LocalDate.of(y, m, d).atStartOfDay().toInstant(ZoneOffset.UTC));
    }

    private static java.util.Date timeOfDay(String t) {
        return new java.util.Date(LocalTime.parse(t).toNanoOfDay() / 1_000_000);
    }

    private static java.util.Date instant(String t) {
        return java.util.Date.from(Instant.parse(t));
    }

    /** Records built with the Connect API and written by fromConnectData: "case.part TAB bytes". */
    static void build(PrintStream out) {
        JsonConverter keys = converter(true);
        JsonConverter values = converter(false);
        Struct typical = new Struct(VALUE)
                .put("id", 1).put("i8", (byte) 12).put("i16", (short) 1234).put("i32", 123456)
                .put("i64", 1234567890123L).put("f32", 1.5f).put("f64", 0.1).put("flag", true)
                .put("text", "Grüße, \"quoted\" 😀\n").put("bin", new byte[] {0, (byte) 0xff, 0x10})
                .put("dec", new BigDecimal("12345.67")).put("big", new BigDecimal("18446744073709551615"))
                .put("day", day(2024, 5, 17)).put("tod", timeOfDay("09:30:00.123"))
                .put("ts", instant("2024-05-17T09:30:00.123Z"));
        Struct extremes = new Struct(VALUE)
                .put("id", 2).put("i8", Byte.MIN_VALUE).put("i16", Short.MIN_VALUE).put("i32", Integer.MIN_VALUE)
                .put("i64", Long.MIN_VALUE).put("f32", -Float.MAX_VALUE).put("f64", Double.MAX_VALUE)
                .put("flag", false).put("text", "").put("bin", new byte[0])
                .put("dec", new BigDecimal("-1234567890123456789012345678901234567890.12"))
                .put("big", BigDecimal.ZERO)
                .put("day", day(1000, 1, 1)).put("tod", timeOfDay("23:59:59.999"))
                .put("ts", instant("1969-12-31T23:59:59.999Z"));
        Struct nulls = new Struct(VALUE).put("id", 3);
        Struct nested = new Struct(NESTED).put("id", 4)
                .put("inner", new Struct(NESTED.field("inner").schema()).put("x", 5));
        for (Object[] c : new Object[][] {{"typical", typical}, {"extremes", extremes}, {"nulls", nulls}, {"nested", nested}}) {
            Struct v = (Struct) c[1];
            Struct k = new Struct(KEY).put("id", v.get("id"));
            line(out, c[0] + ".key", keys.fromConnectData(TOPIC, KEY, k));
            line(out, c[0] + ".value", values.fromConnectData(TOPIC, v.schema(), v));
        }
        // The tutorial's record as a person types it into the console producer, read and written back.
        String typed = "{\"schema\":{\"type\":\"struct\",\"fields\":[{\"type\":\"int32\",\"optional\":false,\"field\":\"id\"},"
                + "{\"type\":\"string\",\"optional\":true,\"field\":\"name\"}],\"optional\":false,\"name\":\"users\"},"
                + "\"payload\":{\"id\":1,\"name\":\"x\"}}";
        SchemaAndValue sv = values.toConnectData(TOPIC, typed.getBytes(StandardCharsets.UTF_8));
        line(out, "typed.value", values.fromConnectData(TOPIC, sv.schema(), sv.value()));
    }

    private static void line(PrintStream out, String name, byte[] bytes) {
        out.println(name + "\t" + new String(bytes, StandardCharsets.UTF_8));
    }
}
