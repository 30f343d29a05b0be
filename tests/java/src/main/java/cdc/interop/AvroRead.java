package cdc.interop;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.PrintStream;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.ByteBuffer;
import java.util.HashMap;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import org.apache.avro.Conversions;
import org.apache.avro.Schema;
import org.apache.avro.data.TimeConversions;
import org.apache.avro.generic.GenericData;
import org.apache.avro.generic.GenericDatumReader;
import org.apache.avro.generic.GenericRecord;
import org.apache.avro.io.BinaryDecoder;
import org.apache.avro.io.DecoderFactory;

/**
 * Confluent-framed Avro (magic byte 0, 4-byte big-endian schema id, Avro binary body) read with
 * Apache Avro's GenericDatumReader, the writer schema fetched from the registry's
 * GET /schemas/ids/{id}, and every logical type converted (decimal → BigDecimal, date →
 * LocalDate, time-* → LocalTime, timestamp-* → Instant, local-timestamp-* → LocalDateTime):
 * what a Java consumer with logical types on sees.
 */
final class AvroRead {
    private AvroRead() {}

    static GenericData withConversions() {
        GenericData data = new GenericData();
        data.addLogicalTypeConversion(new Conversions.DecimalConversion());
        data.addLogicalTypeConversion(new Conversions.UUIDConversion());
        data.addLogicalTypeConversion(new TimeConversions.DateConversion());
        data.addLogicalTypeConversion(new TimeConversions.TimeMillisConversion());
        data.addLogicalTypeConversion(new TimeConversions.TimeMicrosConversion());
        data.addLogicalTypeConversion(new TimeConversions.TimestampMillisConversion());
        data.addLogicalTypeConversion(new TimeConversions.TimestampMicrosConversion());
        data.addLogicalTypeConversion(new TimeConversions.LocalTimestampMillisConversion());
        data.addLogicalTypeConversion(new TimeConversions.LocalTimestampMicrosConversion());
        return data;
    }

    static void read(String registry, List<String> lines, PrintStream out) throws Exception {
        HttpClient http = HttpClient.newHttpClient();
        Map<Integer, Schema> schemas = new HashMap<>();
        GenericData data = withConversions();
        for (String line : lines) {
            ObjectNode o = Canon.NODES.objectNode();
            try {
                if (line.equals("-")) {
                    o.put("ok", true);
                    o.putNull("value");
                } else {
                    byte[] bytes = HexFormat.of().parseHex(line);
                    if (bytes.length < 5 || bytes[0] != 0)
                        throw new IllegalArgumentException("not the Confluent wire format (magic byte 0 and a 4-byte schema id)");
                    int id = ByteBuffer.wrap(bytes, 1, 4).getInt();
                    Schema schema = schemas.get(id);
                    if (schema == null) {
                        schema = fetch(http, registry, id);
                        schemas.put(id, schema);
                    }
                    BinaryDecoder decoder = DecoderFactory.get().binaryDecoder(bytes, 5, bytes.length - 5, null);
                    GenericDatumReader<Object> reader = new GenericDatumReader<>(schema, schema, data);
                    Object datum;
                    try {
                        datum = reader.read(null, decoder);
                    } catch (RuntimeException e) {
                        throw new IllegalStateException(culprits(schema, bytes, data), e);
                    }
                    if (!decoder.isEnd()) throw new IllegalStateException("bytes left after the record");
                    o.put("ok", true);
                    o.put("schema_id", id);
                    o.set("schema", Canon.JSON.readTree(schema.toString()));
                    o.set("value", value(datum));
                }
            } catch (Exception e) {
                o = Canon.error(e);
            }
            out.println(Canon.JSON.writeValueAsString(o));
        }
    }

    /** Which fields' logical-type conversions raise: the record read without conversions, then
     *  each field converted on its own. */
    private static String culprits(Schema schema, byte[] bytes, GenericData data) {
        try {
            BinaryDecoder decoder = DecoderFactory.get().binaryDecoder(bytes, 5, bytes.length - 5, null);
            GenericRecord raw = (GenericRecord) new GenericDatumReader<Object>(schema, schema, new GenericData()).read(null, decoder);
            StringBuilder out = new StringBuilder("the logical-type conversion raises for");
            for (Schema.Field f : schema.getFields()) {
                Object v = raw.get(f.pos());
                Schema s = f.schema();
                if (s.getType() == Schema.Type.UNION) {
                    s = s.getTypes().stream().filter(b -> b.getType() != Schema.Type.NULL).findFirst().orElse(s);
                }
                if (v == null || s.getLogicalType() == null) continue;
                try {
                    Conversions.convertToLogicalType(v, s, s.getLogicalType(), data.getConversionFor(s.getLogicalType()));
                } catch (RuntimeException e) {
                    out.append(" field ").append(f.name()).append(" (").append(s.getLogicalType().getName())
                            .append(", raw value ").append(v).append(": ").append(e.getMessage()).append(");");
                }
            }
            return out.toString();
        } catch (Exception e) {
            return "the record cannot be read even without conversions: " + e;
        }
    }

    private static Schema fetch(HttpClient http, String registry, int id) throws Exception {
        HttpRequest req = HttpRequest.newBuilder(URI.create(registry + "/schemas/ids/" + id)).GET().build();
        HttpResponse<String> resp = http.send(req, HttpResponse.BodyHandlers.ofString());
        if (resp.statusCode() != 200)
            throw new IllegalStateException("GET /schemas/ids/" + id + " answered " + resp.statusCode() + ": " + resp.body());
        JsonNode body = Canon.JSON.readTree(resp.body());
        return new Schema.Parser().parse(body.get("schema").asText());
    }

    private static JsonNode value(Object datum) {
        if (datum == null) return Canon.NODES.nullNode();
        if (datum instanceof GenericRecord r) {
            ObjectNode o = Canon.NODES.objectNode();
            for (Schema.Field f : r.getSchema().getFields()) o.set(f.name(), value(r.get(f.pos())));
            return o;
        }
        return Canon.NODES.textNode(Canon.scalar(datum));
    }
}
