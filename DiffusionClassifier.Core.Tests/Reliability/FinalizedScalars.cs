using System.Diagnostics.Tracing;
using System.Runtime.CompilerServices;
using TorchSharp;

namespace DiffusionClassifier.Tests.Reliability;

/// <summary>
/// Counts the TorchSharp <see cref="Scalar"/>s that the finalizer thread releases, from the runtime's FinalizeObject
/// events. <see cref="Scalar.Dispose"/> suppresses finalization, so these are exactly the temporaries (the implicit
/// alpha of <c>a - b</c>, the 2 of <c>x * 2</c>) that a collection on another thread can free during the native call
/// using them: a deterministic witness of the race that <see cref="GcStress"/> can only provoke by chance.
/// </summary>
internal sealed class FinalizedScalars : EventListener
{
    private readonly nint scalarType = typeof(Scalar).TypeHandle.Value;
    private readonly nint markerType = typeof(Marker).TypeHandle.Value;
    private readonly SemaphoreSlim markers = new(0);
    private int scalars;

    /// <summary>Finalizes everything pending, waits until its events have arrived, and returns the number of Scalars
    /// finalized since the previous call (or since construction).</summary>
    public int Drain()
    {
        GC.Collect();
        GC.WaitForPendingFinalizers();
        DropMarker();
        GC.Collect();
        GC.WaitForPendingFinalizers();
        // One finalizer thread, and its events arrive in order: once the marker's has, so have all before it.
        if (!markers.Wait(TimeSpan.FromSeconds(60)))
            throw new TimeoutException("No FinalizeObject event arrived: are runtime events available in this process?");
        return Interlocked.Exchange(ref scalars, 0);
    }

    public override void Dispose()
    {
        base.Dispose();
        markers.Dispose();
    }

    protected override void OnEventSourceCreated(EventSource eventSource)
    {
        // FinalizeObject: GC keyword, verbose level.
        if (eventSource.Name == "Microsoft-Windows-DotNETRuntime")
            EnableEvents(eventSource, EventLevel.Verbose, (EventKeywords)0x1);
    }

    protected override void OnEventWritten(EventWrittenEventArgs eventData)
    {
        if (eventData.EventName != "FinalizeObject" || eventData.Payload is null || eventData.PayloadNames is null)
            return;
        nint type = eventData.Payload[eventData.PayloadNames.IndexOf("TypeID")] switch
        {
            nint p => p,
            ulong u => (nint)u,
            long l => (nint)l,
            _ => 0,
        };
        if (type == scalarType)
            Interlocked.Increment(ref scalars);
        else if (type == markerType)
            markers.Release();
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void DropMarker() => _ = new Marker();

    private sealed class Marker
    {
        private static int finalized;

        ~Marker() => Interlocked.Increment(ref finalized);
    }
}
