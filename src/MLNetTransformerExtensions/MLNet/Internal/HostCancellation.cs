using Microsoft.ML.Runtime;

namespace MLNetTransformerExtensions.MLNet.Internal;

/// <summary>
/// A cancellation token that also fires when ML.NET cancels the environment (the internal
/// <c>MLContext.CancelExecution</c>, which AutoML uses to stop a trial). ML.NET only sets a flag, so it is polled: on
/// every progress report of the trainer (<see cref="Poll"/>: the token fires before the next step, however busy the
/// machine), and by a timer for trainers that report nothing.
/// </summary>
internal sealed class HostCancellation : IDisposable
{
    private static readonly TimeSpan s_pollInterval = TimeSpan.FromMilliseconds(100);

    private readonly CancellationTokenSource _source;
    private readonly ICancelable? _cancelable;
    private readonly ITimer? _timer;
    private readonly Lock _gate = new();
    private bool _disposed;

    public HostCancellation(IHost host, CancellationToken userToken, TimeProvider? time = null)
    {
        _source = CancellationTokenSource.CreateLinkedTokenSource(userToken);
        _cancelable = host as ICancelable;
        if (_cancelable is { IsCanceled: true })
        {
            _source.Cancel();
        }
        else if (_cancelable is not null)
        {
            _timer = (time ?? TimeProvider.System).CreateTimer(_ => Poll(), null, s_pollInterval, s_pollInterval);
        }
    }

    public CancellationToken Token => _source.Token;

    /// <summary>Fires the token now if ML.NET has cancelled the environment.</summary>
    public void Poll()
    {
        lock (_gate)
        {
            // A timer callback may still run after Dispose began; the source must not be touched once disposed.
            if (!_disposed && _cancelable is { IsCanceled: true } && !_source.IsCancellationRequested)
            {
                _source.Cancel();
            }
        }
    }

    public void Dispose()
    {
        _timer?.Dispose();
        lock (_gate)
        {
            _disposed = true;
        }

        _source.Dispose();
    }
}
