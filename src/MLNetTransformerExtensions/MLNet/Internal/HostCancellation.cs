using Microsoft.ML.Runtime;

namespace MLNetTransformerExtensions.MLNet.Internal;

/// <summary>
/// A cancellation token that also fires when ML.NET cancels the environment (the internal
/// <c>MLContext.CancelExecution</c>, which AutoML uses to stop a trial). ML.NET only sets a flag, so it is polled.
/// </summary>
internal sealed class HostCancellation : IDisposable
{
    private static readonly TimeSpan s_pollInterval = TimeSpan.FromMilliseconds(100);

    private readonly CancellationTokenSource _source;
    private readonly Timer? _timer;

    public HostCancellation(IHost host, CancellationToken userToken)
    {
        _source = CancellationTokenSource.CreateLinkedTokenSource(userToken);
        if (host is ICancelable cancelable)
        {
            if (cancelable.IsCanceled)
            {
                _source.Cancel();
            }
            else
            {
                _timer = new Timer(_ => Poll(cancelable), null, s_pollInterval, s_pollInterval);
            }
        }
    }

    public CancellationToken Token => _source.Token;

    public void Dispose()
    {
        // Wait for a running poll to finish before the source goes away.
        using (var done = new ManualResetEvent(false))
        {
            if (_timer is not null && _timer.Dispose(done))
            {
                done.WaitOne();
            }
        }

        _source.Dispose();
    }

    private void Poll(ICancelable cancelable)
    {
        if (cancelable.IsCanceled && !_source.IsCancellationRequested)
        {
            _source.Cancel();
        }
    }
}
