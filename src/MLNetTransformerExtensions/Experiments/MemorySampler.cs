namespace MLNetTransformerExtensions.Experiments;

/// <summary>
/// The highest resident memory of the process while it runs, sampled every 100 ms: libtorch allocates outside the
/// managed heap, so the GC's counters miss most of a transformer's memory.
/// </summary>
internal sealed class MemorySampler : IDisposable
{
    private static readonly TimeSpan s_interval = TimeSpan.FromMilliseconds(100);
    private readonly Timer _timer;
    private long _peak;

    public MemorySampler()
    {
        _peak = Environment.WorkingSet;
        _timer = new Timer(_ => Sample(), null, s_interval, s_interval);
    }

    public long PeakBytes
    {
        get
        {
            Sample();
            return Interlocked.Read(ref _peak);
        }
    }

    public void Dispose()
    {
        using var done = new ManualResetEvent(false);
        if (_timer.Dispose(done))
        {
            done.WaitOne();
        }
    }

    private void Sample()
    {
        var now = Environment.WorkingSet;
        long seen;
        do
        {
            seen = Interlocked.Read(ref _peak);
        }
        while (now > seen && Interlocked.CompareExchange(ref _peak, now, seen) != seen);
    }
}
