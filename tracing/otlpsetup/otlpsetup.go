// Package otlpsetup configures OpenTelemetry export over OTLP/HTTP from the
// standard OTEL_* environment variables, for programs that embed orderly
// (examples/orders uses it). It lives in a module of its own so that the
// OTLP exporters and the OTel SDK reach only the programs that import it:
// the tracing hooks themselves need only the OTel API.
package otlpsetup

import (
	"context"
	"errors"
	"os"
	"strings"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/exporters/otlp/otlpmetric/otlpmetrichttp"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"

	"github.com/orderly-go/orderly/tracing"
)

// FromEnv configures OpenTelemetry export over OTLP/HTTP from the
// standard environment variables, for programs such as examples/orders:
//
//	shutdown, err := otlpsetup.FromEnv(ctx, "orders")
//	if err != nil { return err }
//	defer shutdown(context.Background())
//
// Traces are exported when OTEL_EXPORTER_OTLP_ENDPOINT or
// OTEL_EXPORTER_OTLP_TRACES_ENDPOINT is set (and OTEL_TRACES_EXPORTER is
// not "none"), metrics when OTEL_EXPORTER_OTLP_ENDPOINT or
// OTEL_EXPORTER_OTLP_METRICS_ENDPOINT is set (and OTEL_METRICS_EXPORTER is
// not "none"); OTEL_SDK_DISABLED=true turns both off. Every other OTLP
// variable (headers, timeout, compression, TLS), OTEL_TRACES_SAMPLER and
// OTEL_METRIC_EXPORT_INTERVAL is read by the SDK as usual. The resource
// has service.name = serviceName unless OTEL_SERVICE_NAME or
// OTEL_RESOURCE_ATTRIBUTES say otherwise.
//
// What is configured becomes the global TracerProvider and MeterProvider,
// which tracing.New uses by default; the global propagator becomes W3C
// Trace Context plus Baggage (tracing.Propagator) in every case. With nothing to export
// it changes no provider and returns a shutdown that does nothing.
// shutdown flushes what is buffered and stops the exporters; call it once.
func FromEnv(ctx context.Context, serviceName string) (shutdown func(context.Context) error, err error) {
	otel.SetTextMapPropagator(tracing.Propagator)
	noop := func(context.Context) error { return nil }
	if strings.EqualFold(strings.TrimSpace(os.Getenv("OTEL_SDK_DISABLED")), "true") {
		return noop, nil
	}
	traces := enabled("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_TRACES_EXPORTER")
	metrics := enabled("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT", "OTEL_METRICS_EXPORTER")
	if !traces && !metrics {
		return noop, nil
	}
	res, err := resource.New(ctx,
		resource.WithAttributes(semconv.ServiceName(serviceName)),
		resource.WithTelemetrySDK(),
		resource.WithFromEnv(), // last: the environment wins
	)
	if err != nil && res == nil {
		return noop, err
	}
	var stops []func(context.Context) error
	shutdown = func(ctx context.Context) error {
		var errs []error
		for _, stop := range stops {
			errs = append(errs, stop(ctx))
		}
		return errors.Join(errs...)
	}
	if traces {
		exp, err := otlptracehttp.New(ctx)
		if err != nil {
			return noop, err
		}
		tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithResource(res))
		otel.SetTracerProvider(tp)
		stops = append(stops, tp.Shutdown)
	}
	if metrics {
		exp, err := otlpmetrichttp.New(ctx)
		if err != nil {
			return noop, errors.Join(err, shutdown(ctx))
		}
		mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewPeriodicReader(exp)), sdkmetric.WithResource(res))
		otel.SetMeterProvider(mp)
		stops = append(stops, mp.Shutdown)
	}
	return shutdown, nil
}

// enabled says whether a signal is to be exported: an endpoint is set for
// it (or for all signals) and its exporter variable does not say "none".
func enabled(endpointVar, exporterVar string) bool {
	if strings.EqualFold(strings.TrimSpace(os.Getenv(exporterVar)), "none") {
		return false
	}
	return os.Getenv("OTEL_EXPORTER_OTLP_ENDPOINT") != "" || os.Getenv(endpointVar) != ""
}
